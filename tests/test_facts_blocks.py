"""The "What Stripe says" section: Stripe's facts per action family, from the approval's `stripeFacts`,
within Slack's Block Kit limits whatever Stripe's objects hold."""

import json
from datetime import datetime
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from api.actions import get_action
from bot.blocks import decided_message, edit_modal, review_message
from bot.blocks.facts import FACTS_BLOCK_ID, MAX_WARNINGS, stripe_facts_blocks
from bot.ids import field_block_id
from tests.fakes.slack import MESSAGE_BLOCK_LIMIT, FakeSlack, block_problems, view_problems

TOKEN = "xoxb-test"
VERIFIED_AT = "2026-11-28T10:00:00+00:00"


def refund_facts(**charge: Any) -> dict[str, Any]:
    return {
        "status": "verified", "verifiedAt": VERIFIED_AT, "livemode": False,
        "facts": {
            "charge": {"id": "ch_3NxYzAbCdEfGhIjK", "amount": 34900, "currency": "usd",
                       "created": "2026-11-02T15:30:00+00:00", "age_days": 26, "amount_refunded": 0,
                       "refundable": 34900, "disputed": False, "dispute_status": None, "risk_level": "normal",
                       "payment_method": {"brand": "visa", "last4": "4242", "country": "US"}, **charge},
            "customer": {"id": "cus_QaAbCdEfGhIjK", "name": "Jane Doe", "email": "jane@example.com",
                         "refunds_90d": {"count": 2, "amount": 8000}},
        },
        "warnings": [],
    }


def approval(action: str = "issue_refund", stripe_facts: Any = None, **overrides: Any) -> dict[str, Any]:
    details = {"charge_id": "ch_3NxYzAbCdEfGhIjK", "amount_cents": 34900, "currency": "usd", "reason": "duplicate"}
    base = {
        "approvalId": "apr_01FACTS", "status": "pending", "action": action, "summary": "Refund a duplicate",
        "details": details, "justification": None, "modifiedDetails": None, "changes": {}, "decisionNote": None,
        "decidedBy": None, "rule": None, "approvals": [], "requiredApprovals": 1, "metadata": {},
        "createdAt": "2026-11-28T09:00:00Z", "decidedAt": None, "expiresAt": "2026-11-29T09:00:00Z",
        "execution": {"status": "not_requested"}, "stripeFacts": stripe_facts,
    }
    return {**base, **overrides}


def section_text(subject: dict[str, Any], *, stripe_configured: bool = True, test_mode: bool = True) -> str:
    blocks = [b.to_dict() for b in stripe_facts_blocks(subject, stripe_configured=stripe_configured,
                                                       test_mode=test_mode)]
    return "\n".join(_strings(blocks))


def _strings(node: Any) -> list[str]:
    """The text a reader sees: every text object's `text`, in order."""
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return own + [s for key, value in node.items() if key != "text" or not own for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def day(iso: str) -> str:
    """How a date reads in the section: Slack's date token with the ISO day as fallback."""
    moment = datetime.fromisoformat(iso)
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}}|{moment.date().isoformat()}>"


def review_blocks(subject: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    _, blocks = review_message(subject, connection_name="support", test_mode=True, version=1,
                               stripe_configured=True, **kwargs)
    return blocks


# -- per family --------------------------------------------------------------------------------------


def test_refund_shows_the_charge_card_risk_dispute_and_customer():
    text = section_text(approval(stripe_facts=refund_facts()))
    assert "*What Stripe says*" in text
    assert f"*Charge* $349.00 USD on {day('2026-11-02T15:30:00+00:00')} (26 days ago)" in text
    assert "refunded so far $0.00 USD" in text and "still refundable $349.00 USD" in text
    assert "Visa •••• 4242 (US) · Radar risk: normal · not disputed" in text
    assert "“Jane Doe” &lt;jane@example.com&gt;" in text
    assert "2 refunds in 90 days ($80.00 USD)" in text
    assert "Read from Stripe <!date^" in text
    assert "Not verified" not in text


def test_refund_marks_warnings_disputes_and_elevated_risk():
    facts = refund_facts(disputed=True, dispute_status="needs_response", risk_level="elevated", age_days=94)
    facts["warnings"] = ["charge is 94 days old", "customer already refunded 3 times this month"]
    text = section_text(approval(stripe_facts=facts))
    assert "⚠️ charge is 94 days old\n⚠️ customer already refunded 3 times this month" in text
    assert "Radar risk: *elevated*" in text and "*disputed* (needs response)" in text
    assert "(94 days ago)" in text


def test_refund_of_a_charge_without_customer_or_card_says_so():
    facts = refund_facts(payment_method=None, risk_level=None)
    facts["facts"]["customer"] = None
    text = section_text(approval(stripe_facts=facts))
    assert "*Customer* none on this charge" in text
    assert "not disputed" in text and "None" not in text


def test_zero_decimal_currencies_use_their_own_exponent():
    facts = refund_facts(amount=5000, currency="jpy", amount_refunded=1000, refundable=4000)
    text = section_text(approval(stripe_facts=facts))
    assert "*Charge* ¥5,000 JPY" in text and "refunded so far ¥1,000 JPY" in text
    assert "still refundable ¥4,000 JPY" in text and "2 refunds in 90 days (¥8,000 JPY)" in text


def test_payout_shows_the_balance_and_destination():
    facts = {"status": "verified", "verifiedAt": VERIFIED_AT, "livemode": False, "warnings":
             ["payout exceeds available balance"],
             "facts": {"balance": {"currency": "usd", "available": 120000, "pending": 30000},
                       "destination": {"id": "ba_1Oabc", "type": "bank_account", "bank_name": "STRIPE TEST BANK",
                                       "last4": "6789"}}}
    text = section_text(approval("create_payout", facts, details={"amount_cents": 150000, "currency": "usd"}))
    assert "*Balance (USD)* available $1,200.00 USD · pending $300.00 USD" in text
    assert "*Destination* bank account “STRIPE TEST BANK” •••• 6789 · `ba_1Oabc`" in text
    assert "⚠️ payout exceeds available balance" in text


def test_payout_to_the_default_destination():
    facts = {"status": "verified", "verifiedAt": VERIFIED_AT, "livemode": False, "warnings": [],
             "facts": {"balance": {"currency": "eur", "available": 0, "pending": 500}, "destination": None}}
    text = section_text(approval("create_payout", facts, details={"amount_cents": 100, "currency": "eur"}))
    assert "available €0.00 EUR · pending €5.00 EUR" in text and "the account's default" in text


def subscription_facts(**subscription: Any) -> dict[str, Any]:
    return {"status": "verified", "verifiedAt": VERIFIED_AT, "livemode": False, "warnings": [], "facts": {
        "subscription": {"id": "sub_1", "status": "active", "customer": "cus_Q1", "currency": "usd",
                         "current_period_end": "2026-12-01T00:00:00+00:00", "cancel_at_period_end": False,
                         "items": [{"id": "si_1", "price": "price_Pro", "product": "prod_Pro", "unit_amount": 2000,
                                    "quantity": 3, "interval": "month"}], **subscription},
        "next_invoice": {"date": "2026-12-01T00:00:00+00:00", "amount": 6000, "currency": "usd"},
        "preview": {"amount_due": 4000, "currency": "usd", "proration_amount": -500},
    }}


def test_subscription_shows_plan_status_next_invoice_and_the_preview_of_the_change():
    subject = approval("update_subscription", subscription_facts(),
                       details={"subscription_id": "sub_1", "items": [{"id": "si_1", "quantity": 2}]})
    text = section_text(subject)
    assert f"*Subscription* active · renews {day('2026-12-01T00:00:00+00:00')}" in text
    assert "customer <https://dashboard.stripe.com/test/customers/cus_Q1|cus_Q1>" in text
    assert "*Plan* <https://dashboard.stripe.com/test/prices/price_Pro|price_Pro>" in text
    assert "· $20.00 USD / month × 3" in text
    assert f"*Next invoice* {day('2026-12-01T00:00:00+00:00')} · $60.00 USD" in text
    assert "*With this change* next invoice $40.00 USD · proration -$5.00 USD" in text


def test_subscription_in_trouble_or_already_cancelling_is_marked():
    subject = approval("cancel_subscription", subscription_facts(status="past_due", cancel_at_period_end=True),
                       details={"subscription_id": "sub_1"})
    text = section_text(subject)
    assert "*Subscription* *past due* · ends <!date^" in text
    assert "set to cancel at period end" in section_text(approval(
        "cancel_subscription", subscription_facts(current_period_end=None, cancel_at_period_end=True)))


def test_dispute_shows_reason_amount_and_evidence_deadline():
    facts = {"status": "verified", "verifiedAt": VERIFIED_AT, "livemode": False, "warnings": [], "facts": {
        "dispute": {"id": "dp_1", "status": "needs_response", "reason": "product_not_received", "amount": 34900,
                    "currency": "usd", "evidence_due_by": "2026-12-10T23:59:59+00:00", "charge": "ch_9"}}}
    text = section_text(approval("close_dispute", facts, details={"dispute_id": "dp_1"}))
    assert "*Dispute* needs response · reason: product not received · $349.00 USD" in text
    due = int(datetime.fromisoformat("2026-12-10T23:59:59+00:00").timestamp())
    assert f"evidence due by <!date^{due}^" in text and "|ch_9>" in text


# -- verified or not ---------------------------------------------------------------------------------


def test_unverified_facts_say_so_first():
    facts = {"status": "unverified", "verifiedAt": None, "livemode": False, "facts": {},
             "warnings": ["not verified against Stripe"], "reason": "Stripe timed out\n*after 3 s*"}
    text = section_text(approval(stripe_facts=facts))
    assert text.startswith("*What Stripe says*\n⚠️ *Not verified against Stripe*")
    assert "\n_Why:_ Stripe timed out ∗after 3 s∗" in text  # outside text: marks made inert
    assert "keeps asking Stripe and updates this message" in text
    assert text.lower().count("not verified against stripe") == 1
    decided = approval(stripe_facts=facts, status="rejected")
    assert "keeps asking" not in section_text(decided) and "Not verified" in section_text(decided)
    assert "Read from Stripe" not in text


def test_no_facts_while_stripe_is_configured_is_not_verified():
    assert "⚠️ *Not verified against Stripe*" in section_text(approval(stripe_facts=None))


def test_no_facts_without_stripe_and_no_section_for_other_actions():
    assert section_text(approval(stripe_facts=None), stripe_configured=False) == ""
    custom = approval("send_gift_card", refund_facts(), details={"amount_cents": 100})
    assert section_text(custom) == ""
    assert section_text(approval("retrieve_balance", None, details={})) == ""


def test_an_object_from_the_other_mode_is_marked():
    live_object = {**refund_facts(), "livemode": True}
    assert "live mode*, but Cheqpoint uses a test key" in section_text(approval(stripe_facts=live_object))
    assert "test data*, but Cheqpoint uses a live key" in section_text(approval(stripe_facts=refund_facts()),
                                                                           test_mode=False)


# -- in the messages and the modal -------------------------------------------------------------------


def test_review_and_decided_messages_carry_the_section_before_the_decision():
    subject = approval(stripe_facts=refund_facts())
    blocks = review_blocks(subject)
    ids = [b.get("block_id") for b in blocks]
    assert FACTS_BLOCK_ID in ids and blocks[-1]["type"] == "actions"
    decided = {**subject, "status": "rejected", "decidedBy": {"type": "slack_user", "id": "U1"},
               "decidedAt": "2026-11-28T11:00:00Z", "decisionNote": "no"}
    _, after = decided_message(decided, connection_name="support", test_mode=True, stripe_configured=True)
    assert "Visa •••• 4242" in json.dumps(after, ensure_ascii=False)


def test_edit_modal_hints_what_stripe_allows():
    fields = get_action("issue_refund").editable
    view = edit_modal(approval(stripe_facts=refund_facts(amount_refunded=10000, refundable=24900)), 1, fields)
    amount = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("amount_cents"))
    assert amount["hint"]["text"] == "Stripe says at most $249.00 USD can still be refunded."
    assert view_problems(view) == []

    payout_facts = {"status": "verified", "verifiedAt": VERIFIED_AT, "livemode": False, "warnings": [],
                    "facts": {"balance": {"currency": "usd", "available": 120000, "pending": 0}, "destination": None}}
    payout = approval("create_payout", payout_facts, details={"amount_cents": 50000, "currency": "usd"})
    view = edit_modal(payout, 1, get_action("create_payout").editable)
    amount = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("amount_cents"))
    assert amount["hint"]["text"] == "At most $500.00 USD. Stripe says the available balance is $1,200.00 USD."


def test_edit_modal_has_no_stripe_hint_without_verified_facts():
    unverified = {**refund_facts(), "status": "unverified"}
    view = edit_modal(approval(stripe_facts=unverified), 1, get_action("issue_refund").editable)
    assert "Stripe says" not in json.dumps(view)


# -- whatever Stripe's objects hold ------------------------------------------------------------------


def test_outside_text_cannot_ping_draw_lines_or_links():
    facts = refund_facts()
    facts["facts"]["customer"]["name"] = "<!channel> Jane\n*Radar risk:* normal\u202e <https://evil.example|ok>"
    facts["facts"]["customer"]["email"] = "a@b.c>\n⚠️ verified"
    facts["warnings"] = ["<@U0BOSS> says approve"]
    text = section_text(approval(stripe_facts=facts))
    assert "<!channel>" not in text and "<https://evil" not in text and "<@U0BOSS>" not in text
    assert "\u202e" not in text
    customer_line = next(line for line in text.splitlines() if line.startswith("*Customer*"))
    assert "*Radar risk:*" not in text and "∗Radar risk:∗ normal" in customer_line
    assert "⚠️ verified" in customer_line


@pytest.mark.parametrize("facts", [
    {},
    {"status": "verified"},
    {"status": "verified", "facts": None, "warnings": None},
    {"status": "verified", "facts": {"charge": {}, "customer": {}}, "warnings": [None, 3, ""]},
    {"status": "verified", "facts": {"charge": {"amount": "lots", "currency": 5, "age_days": -1, "created": "x",
                                                "payment_method": {"brand": None, "last4": "12345", "country": 7}},
                                     "customer": {"refunds_90d": {"count": True, "amount": 1.5}}}},
    {"status": "verified", "facts": ["not", "a", "mapping"], "verifiedAt": "yesterday"},
])
def test_missing_or_odd_fields_never_fail_nor_guess(facts):
    for action in ("issue_refund", "create_payout", "update_subscription", "close_dispute"):
        text = section_text(approval(action, facts))
        assert "*What Stripe says*" in text and "None" not in text and "lots" not in text
        assert "USD" not in text  # no currency given: no money shown, never a guessed one


def huge_facts() -> list[dict[str, Any]]:
    name = "Jane " * 4000
    refund = refund_facts()
    refund["facts"]["customer"]["name"] = name
    refund["facts"]["customer"]["email"] = "x" * 10_000 + "@example.com"
    refund["warnings"] = [f"warning {n} " + "w" * 5000 for n in range(300)]
    subscription = subscription_facts(items=[{"id": f"si_{n}", "price": "p" * 3000, "product": "prod_" + "x" * 300,
                                              "unit_amount": 10**15, "quantity": 10**9, "interval": "month"}
                                             for n in range(500)])
    subscription["warnings"] = ["x" * 2000] * 40
    return [approval(stripe_facts=refund), approval("update_subscription", subscription,
                                                    details={"subscription_id": "sub_1"})]


def test_long_names_and_many_warnings_stay_within_block_kit_limits():
    for subject in huge_facts():
        blocks = review_blocks(subject)
        assert block_problems(blocks, limit=MESSAGE_BLOCK_LIMIT, pointer="/blocks") == []
        text = "\n".join(_strings(blocks))
        assert f"… and {300 - MAX_WARNINGS} more warnings" in text or "… and 32 more warnings" in text


@pytest.fixture(scope="module")
def slack():
    fake = FakeSlack(token=TOKEN)
    with fake.serving() as base_url:
        yield fake, base_url


async def test_slack_accepts_every_facts_message(slack):
    fake, base_url = slack
    client = AsyncWebClient(token=TOKEN, base_url=base_url)
    for subject in [approval(stripe_facts=refund_facts()), *huge_facts()]:
        text, blocks = review_message(subject, connection_name="c", test_mode=True, version=1,
                                      stripe_configured=True)
        posted = await client.chat_postMessage(channel=FakeSlack.REVIEW_CHANNEL, text=text, blocks=blocks)
        assert FACTS_BLOCK_ID in [b.get("block_id") for b in fake.message(FakeSlack.REVIEW_CHANNEL,
                                                                            posted["ts"])["blocks"]]
