"""What a person may type as money: plain ASCII decimals and the request currency's own symbol, in the
Slack edit modal (through the real wire) and in the CLI's `--set amount_cents=…` (the same rules)."""

import re
import time

import pytest

from api.actions import get_action
from api.money import parse_major
from bot.ids import field_block_id
from tests.slack_helpers import PAYOUT, select_input, slack_harness, text_input

AMOUNT = field_block_id("amount_cents")


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


# Each was accepted, approved and executed as money before; each now gets its own reason.
REFUSED = [
    ("€50", "€ is not the symbol of USD"),
    ("¥50", "¥ is not the symbol of USD"),
    ("1e2", "written with an exponent"),
    ("５０", "digits other than 0–9"),
    ("5_0", "contains “_”"),
    ("1,0.5", "misplaced thousands separators"),
    ("1.001", "at most 2 decimal places"),
    ("1.100", "at most 2 decimal places"),
    ("9" * 200, "too long"),
    ("1e999990", "written with an exponent"),
    ("1e999999999", "written with an exponent"),
    ("-5", "greater than zero"),
    ("50$", "Put $ before the amount"),
]


@pytest.mark.parametrize(("typed", "reason"), REFUSED)
async def test_the_edit_modal_refuses_what_is_not_plain_money(slack, typed, reason):
    created = await slack.request(PAYOUT)  # $500.00 USD, may only be lowered
    await slack.settle()
    await slack.click("edit", created["approvalId"])
    started = time.perf_counter()
    response = await slack.submit(slack.last_view(), {AMOUNT: {"amount": text_input(typed)},
                                                      field_block_id("method"): {"method": select_input("standard")}})
    assert time.perf_counter() - started < 2  # `1e999990` once took ~30 s of CPU on the event loop
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors" and reason in answer["errors"][AMOUNT]
    state = await slack.approval(created["approvalId"])
    assert state["status"] == "pending" and state["modifiedDetails"] is None


async def test_the_edit_modal_takes_plain_decimals_with_the_currencys_own_symbol(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    await slack.click("edit", created["approvalId"])
    response = await slack.submit(slack.last_view(), {AMOUNT: {"amount": text_input(" $450.5 ")},
                                                      field_block_id("method"): {"method": select_input("standard")}})
    assert response.status_code == 200 and not response.content.strip(b"{}")
    final = await slack.approval(created["approvalId"])
    assert final["status"] == "approved" and final["modifiedDetails"]["amount_cents"] == 45050


@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("50", "usd", 5000), ("50.5", "usd", 5050), ("1,000.50", "usd", 100050), ("12,345,678", "usd", 1234567800),
    ("$0.01", "usd", 1), ("¥5,000", "jpy", 5000), ("€7", "eur", 700), ("1.234", "kwd", 1234), ("0050", "usd", 5000),
])
def test_parse_major_reads_plain_ascii_decimals_exactly(typed, currency, minor):
    assert parse_major(typed, currency) == minor


@pytest.mark.parametrize(("typed", "currency", "reason"), [
    ("5.5", "jpy", "JPY has no decimal places."),
    ("$5", "jpy", "$ is not the symbol of JPY"),
    ("1,00", "usd", "misplaced thousands separators"),
    ("1,000,00.5", "usd", "misplaced thousands separators"),
    ("0x10", "usd", "is not a number"),
    ("NaN", "usd", "is not a number"),
    ("Infinity", "usd", "is not a number"),
    ("٥٠", "usd", "digits other than 0–9"),
    ("", "usd", "is not a number"),
    ("9" * 16, "usd", "far larger than any USD amount"),
])
def test_parse_major_names_what_is_wrong(typed, currency, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_major(typed, currency)


def test_parse_major_answers_absurd_exponents_at_once():
    for typed in ("1e999990", "1e999999999", "9" * 10_000, "1" + "0" * 5000 + ".5"):
        started = time.perf_counter()
        with pytest.raises(ValueError):
            parse_major(typed, "usd")
        assert time.perf_counter() - started < 0.05, typed[:20]


@pytest.mark.parametrize(("typed", "expected"), [
    ("17450", 17450), ("174.50", 17450), ("$174.50", 17450), ("1,000.50", 100050),
])
def test_the_clis_set_amount_takes_minor_units_or_plain_major_units(typed, expected):
    # `cheqpoint approvals approve ID --set amount_cents=…` reads its value with `parse_edit`.
    assert get_action("issue_refund").parse_edit("amount_cents", typed, "usd") == expected


@pytest.mark.parametrize(("typed", "reason"), [
    ("５０", "digits other than 0–9"),
    ("€50", "€ is not the symbol of USD"),
    ("1e2", "exponent"),
    ("5_0", "“_”"),
    ("1,0.5", "misplaced thousands separators"),
    ("1.001", "at most 2 decimal places"),
    ("1,000", "ambiguous"),
    ("9" * 40, "too long"),
    ("9" * 20, "far larger"),
    ("1e999999999", "exponent"),
])
def test_the_clis_set_amount_refuses_the_same_as_the_modal(typed, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        get_action("issue_refund").parse_edit("amount_cents", typed, "usd")
