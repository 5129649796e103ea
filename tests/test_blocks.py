"""The Block Kit builders: what reviewers read, and that Slack (the fake) accepts every payload."""

import json
from dataclasses import dataclass

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from api.actions import get_action
from bot.blocks import (
    alert_text,
    app_home,
    decided_message,
    edit_modal,
    read_edit_submission,
    read_note,
    reject_modal,
    reminder_text,
    review_message,
)
from bot.ids import ActionId, ButtonRef, CallbackId, field_block_id
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-test"
REVIEW = FakeSlack.REVIEW_CHANNEL


def approval(**overrides) -> dict:
    """CONTRACT §3's approval object for the seed's refund, pending."""
    base = {
        "approvalId": "apr_01HZX",
        "status": "pending",
        "action": "issue_refund",
        "summary": "AI agent requesting full refund for charge ch_3NxYz for $349.00",
        "details": {
            "charge_id": "ch_3NxYzAbCdEfGhIjK",
            "amount_cents": 34900,
            "currency": "usd",
            "reason": "duplicate",
            "customer_id": "cus_QaAbCdEfGhIjK",
        },
        "justification": "Customer provided proof of duplicate charge within dispute window.",
        "modifiedDetails": None,
        "changes": {},
        "decisionNote": None,
        "decidedBy": None,
        "rule": "large refunds",
        "approvals": [],
        "requiredApprovals": 1,
        "riskLevel": "medium",
        "priority": "normal",
        "agentName": "support-bot",
        "metadata": {},
        "createdAt": "2024-05-01T09:00:00Z",
        "decidedAt": None,
        "expiresAt": "2024-05-02T09:00:00Z",
        "execution": {"status": "not_requested", "stripeObjectId": None, "result": None, "error": None},
    }
    return {**base, **overrides}


def payout_jpy(**overrides) -> dict:
    details = {"amount_cents": 5000, "currency": "jpy", "method": "standard"}
    return approval(action="create_payout", summary="Weekly payout", details=details, **overrides)


def decided(**overrides) -> dict:
    fields = {
        "status": "approved",
        "decidedBy": {"type": "slack_user", "id": "U0ANN", "name": "ann"},
        "decidedAt": "2024-05-01T10:00:00Z",
    }
    return approval(**{**fields, **overrides})


def texts(blocks) -> str:
    """Every string in the payload, to search what a reader would see."""
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"]


def state(values: dict[str, tuple[str, dict]]) -> dict:
    """view.state.values as Slack sends them: {block_id: {action_id: state}}."""
    return {block_id: {action_id: element} for block_id, (action_id, element) in values.items()}


def amount_state(text: str) -> dict:
    return state({field_block_id("amount_cents"): ("amount", {"type": "plain_text_input", "value": text})})


# -- the review message -----------------------------------------------------------------------------


def test_review_message_says_the_money_in_words():
    text, blocks = review_message(approval(), connection_name="Support desk", test_mode=False, version=1)
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Refund $349.00 USD"}}
    assert "Refund $349.00 USD" in text
    _, blocks = review_message(payout_jpy(), connection_name="Treasury", test_mode=False, version=1)
    assert blocks[0]["text"]["text"] == "Payout ¥5,000 JPY"


def test_refund_without_amount_is_a_full_refund():
    details = {"charge_id": "ch_1", "reason": "duplicate"}
    _, blocks = review_message(approval(details=details), connection_name="c", test_mode=False, version=1)
    assert blocks[0]["text"]["text"] == "Full refund"
    assert "*Amount:* full refund" in texts(blocks)


def test_review_message_names_the_connection_summary_justification_and_assessment():
    _, blocks = review_message(approval(priority="urgent"), connection_name="Support desk", test_mode=False, version=1)
    shown = texts(blocks)
    for fact in (
        "Support desk",
        "support-bot",
        "full refund for charge",
        "proof of duplicate charge",
        "*Risk*",
        "medium",
        "⚡ urgent",
        "*Reason:* duplicate",
    ):
        assert fact in shown


def test_review_message_shows_risk_score_metadata_and_trace_when_given():
    plain = texts(review_message(approval(), connection_name="c", test_mode=False, version=1)[1])
    assert "Risk score" not in plain and "Trace" not in plain
    given = approval(riskScore=0.42, metadata={"ticket": "T-1"}, trace={"step": "refund", "span": 3})
    shown = texts(review_message(given, connection_name="c", test_mode=False, version=1)[1])
    for fact in ("*Risk score*\n0.42", "*Metadata*\nticket: T-1", '{"step":"refund","span":3}'):
        assert json.dumps(fact, ensure_ascii=False)[1:-1] in shown


def test_dashboard_links_say_test_only_in_test_mode():
    _, live = review_message(approval(), connection_name="c", test_mode=False, version=1)
    _, test = review_message(approval(), connection_name="c", test_mode=True, version=1)
    assert "<https://dashboard.stripe.com/payments/ch_3NxYzAbCdEfGhIjK|ch_3NxYzAbCdEfGhIjK>" in texts(live)
    assert "https://dashboard.stripe.com/test/payments/ch_3NxYzAbCdEfGhIjK" in texts(test)
    assert "https://dashboard.stripe.com/test/customers/cus_QaAbCdEfGhIjK" in texts(test)
    assert "/test/" not in texts(live) and "TEST MODE" not in texts(live)
    assert "TEST MODE" in texts(test)


def test_buttons_carry_the_approval_and_version():
    _, blocks = review_message(approval(), connection_name="c", test_mode=False, version=7)
    found = buttons(blocks)
    assert [b["text"]["text"] for b in found] == ["Approve", "Reject", "Edit", "I'm on it"]
    assert [b["action_id"] for b in found] == [ActionId.APPROVE, ActionId.REJECT, ActionId.EDIT, ActionId.CLAIM]
    assert {ButtonRef.loads(b["value"]) for b in found} == {ButtonRef(approval_id="apr_01HZX", version=7)}


def test_large_amounts_ask_for_confirmation_before_approving():
    _, big = review_message(approval(), connection_name="c", test_mode=False, version=1, confirm_over_minor=10000)
    _, small = review_message(approval(), connection_name="c", test_mode=False, version=1, confirm_over_minor=50000)
    assert "$349.00 USD" in buttons(big)[0]["confirm"]["text"]["text"]
    assert "confirm" not in buttons(small)[0]


def test_nothing_to_edit_means_no_edit_button():
    _, blocks = review_message(approval(), connection_name="c", test_mode=False, version=1, can_edit=False)
    assert [b["action_id"] for b in buttons(blocks)] == ["approve", "reject", "claim"]


def test_why_review_with_one_of_two_approvals_and_the_expiry():
    votes = [{"by": {"type": "slack_user", "id": "U0ANN"}, "at": "2024-05-01T09:30:00Z", "note": None}]
    _, blocks = review_message(
        approval(requiredApprovals=2, approvals=votes), connection_name="c", test_mode=False, version=2
    )
    shown = texts(blocks)
    assert "rule “large refunds”" in shown
    assert "*1 of 2 approvals*: <@U0ANN>" in shown
    assert "<!date^1714640400^{date_short_pretty} at {time}|2024-05-02 09:00 UTC>" in shown


def test_agent_text_cannot_ping_the_channel_or_fake_links():
    sneaky = approval(summary="<!channel> refund <https://evil.example|ch_1>", justification="a & b")
    text, blocks = review_message(sneaky, connection_name="<!here>", test_mode=False, version=1)
    assert "<!channel>" not in texts(blocks) + text and "<!here>" not in texts(blocks)
    assert "&lt;!channel&gt;" in texts(blocks) and "a &amp; b" in texts(blocks)


def test_every_action_family_is_laid_out():
    cases = {
        "cancel_subscription": ({"subscription_id": "sub_1", "at_period_end": True}, "at the end of the period"),
        "update_subscription": ({"subscription_id": "sub_1", "items": [{"id": "si_1", "quantity": 3}]}, "quantity=3"),
        "close_dispute": ({"dispute_id": "dp_1"}, "/disputes/dp_1"),
        "submit_dispute_evidence": (
            {"dispute_id": "dp_1", "evidence": {"product_description": "Mug"}, "submit": True},
            "Submit to the bank now:* yes",
        ),
        "something_custom": ({"order": "A-17", "refund_cents": 250, "currency": "eur"}, "€2.50 EUR"),
    }
    for action, (details, expected) in cases.items():
        _, blocks = review_message(
            approval(action=action, details=details), connection_name="c", test_mode=False, version=1
        )
        assert expected in texts(blocks), action


# -- the decided message ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["approved", "rejected", "expired", "cancelled"])
def test_decided_messages_have_no_buttons(status):
    text, blocks = decided_message(decided(status=status), connection_name="c", test_mode=False)
    assert not any(b["type"] == "actions" for b in blocks)
    assert status.capitalize() in texts(blocks) and text.startswith(status.capitalize())


def test_decided_message_shows_who_the_note_and_changes_old_to_new():
    edited = {**approval()["details"], "amount_cents": 17450, "reason": "requested_by_customer"}
    result = decided(
        modifiedDetails=edited,
        changes={
            "amount_cents": {"from": 34900, "to": 17450},
            "reason": {"from": "duplicate", "to": "requested_by_customer"},
        },
        decisionNote="Approved partial refund only — 50% per policy.",
    )
    _, blocks = decided_message(result, connection_name="c", test_mode=False)
    shown = texts(blocks)
    assert blocks[0]["text"]["text"] == "Refund $174.50 USD"  # what runs is the edited amount
    assert "by <@U0ANN>" in shown
    assert "> Approved partial refund only" in shown
    assert "*Amount:* $349.00 USD → $174.50 USD" in shown
    assert "*Reason:* duplicate → requested by customer" in shown


def test_decided_by_operators_and_rules_by_name():
    by_operator = decided(decidedBy={"type": "operator", "id": "op", "name": "Dana (finance)"})
    by_rule = decided(decidedBy={"type": "rule", "id": "small duplicate refunds", "name": "small duplicate refunds"})
    assert "by Dana (finance)" in texts(decided_message(by_operator, connection_name="c", test_mode=False)[1])
    assert "by rule “small duplicate refunds”" in texts(
        decided_message(by_rule, connection_name="c", test_mode=False)[1]
    )


def test_execution_states():
    def shown(execution: dict, test_mode: bool = False) -> str:
        return texts(decided_message(decided(execution=execution), connection_name="c", test_mode=test_mode)[1])

    assert "queued" in shown({"status": "queued"})
    assert "running" in shown({"status": "running"})
    ok = shown({"status": "succeeded", "stripeObjectId": "re_123"}, test_mode=True)
    assert "<https://dashboard.stripe.com/test/refunds/re_123|re_123>" in ok
    error = {"type": "invalid_request_error", "code": "charge_already_refunded", "message": "Already refunded."}
    failed = shown({"status": "failed", "error": error})
    assert "`invalid_request_error` · `charge_already_refunded`: Already refunded." in failed
    assert "the agent acts on the decision" in shown({"status": "not_requested"})


# -- modals -----------------------------------------------------------------------------------------


def test_reject_modal_requires_a_note_and_points_at_the_version():
    view = reject_modal(approval(), version=4)
    assert view["callback_id"] == CallbackId.REJECT_MODAL
    assert ButtonRef.loads(view["private_metadata"]) == ButtonRef(approval_id="apr_01HZX", version=4)
    note = next(b for b in view["blocks"] if b["type"] == "input")
    assert "note" in note["element"]["action_id"] and not note.get("optional")


def test_edit_modal_has_one_input_per_field_prefilled_in_major_units():
    refund = edit_modal(approval(), 2, get_action("issue_refund").editable)
    inputs = {b["block_id"]: b["element"] for b in refund["blocks"] if b["type"] == "input"}
    assert refund["callback_id"] == CallbackId.EDIT_MODAL
    assert inputs[field_block_id("amount_cents")]["action_id"] == "amount"
    assert inputs[field_block_id("amount_cents")]["initial_value"] == "349.00"
    assert inputs[field_block_id("reason")]["initial_option"]["value"] == "duplicate"
    assert "note" in inputs["note"]["action_id"]
    payout = edit_modal(payout_jpy(), 2, get_action("create_payout").editable)
    amount = next(b for b in payout["blocks"] if b.get("block_id") == field_block_id("amount_cents"))
    assert amount["element"]["initial_value"] == "5000"
    assert amount["label"]["text"].endswith("(JPY)") and "¥5,000 JPY" in amount["hint"]["text"]


def test_edit_modal_bools_and_item_quantities():
    cancel = approval(action="cancel_subscription", details={"subscription_id": "sub_1", "prorate": True})
    view = edit_modal(cancel, 1, get_action("cancel_subscription").editable)
    prorate = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("prorate"))
    assert prorate["element"]["initial_option"]["value"] == "true"
    details = {"subscription_id": "sub_1", "items": [{"id": "si_1", "quantity": 3}]}
    spec = get_action("update_subscription")
    view = edit_modal(approval(action="update_subscription", details=details), 1, spec.editable_for(details))
    quantity = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("items.0.quantity"))
    assert quantity["element"]["initial_value"] == "3"


@pytest.mark.parametrize(
    ("typed", "currency", "message"),
    [
        ("abc", "usd", "“abc” is not a number."),
        ("1.001", "usd", "USD amounts have at most 2 decimal places."),
        ("5.5", "jpy", "JPY has no decimal places."),
        ("0", "usd", "The amount must be greater than zero."),
    ],
)
def test_edit_submission_errors_are_keyed_by_block_id(typed, currency, message):
    fields = get_action("issue_refund").editable
    edits, errors = read_edit_submission(amount_state(typed), fields, currency)
    assert edits == {} and errors == {field_block_id("amount_cents"): message}


def test_edit_submission_reads_canonical_units():
    fields = get_action("issue_refund").editable
    values = amount_state("174.50")
    values[field_block_id("reason")] = {"reason": {"type": "static_select", "selected_option": {"value": "fraudulent"}}}
    values["note"] = {"note": {"type": "plain_text_input", "value": "  half, per policy  "}}
    assert read_edit_submission(values, fields, "usd") == ({"amount_cents": 17450, "reason": "fraudulent"}, {})
    assert read_edit_submission(amount_state("5000"), fields, "jpy") == ({"amount_cents": 5000}, {})
    assert read_note(values) == "half, per policy"
    assert read_note({"note": {"note": {"value": "   "}}}) is None


def test_lower_only_amounts_cannot_go_up():
    fields = get_action("create_payout").editable
    edits, errors = read_edit_submission(
        amount_state("60"), fields, "jpy", current_details={"amount_cents": 50, "currency": "jpy"}
    )
    assert edits == {} and "at most ¥50 JPY" in errors[field_block_id("amount_cents")]


def test_bool_and_quantity_submissions():
    @dataclass(frozen=True)
    class Field:
        name: str
        label: str
        kind: str
        choices: tuple[str, ...] = ()
        lower_only: bool = False

    fields = [Field("prorate", "Prorate", "bool"), Field("items.0.quantity", "Quantity", "quantity")]
    values = {
        field_block_id("prorate"): {"prorate": {"selected_option": {"value": "false"}}},
        field_block_id("items.0.quantity"): {"items.0.quantity": {"value": "2"}},
    }
    assert read_edit_submission(values, fields, "usd") == ({"prorate": False, "items.0.quantity": 2}, {})
    values[field_block_id("items.0.quantity")]["items.0.quantity"]["value"] = "two"
    _, errors = read_edit_submission(values, fields, "usd")
    assert errors == {field_block_id("items.0.quantity"): "“two” is not a whole number."}


# -- App Home, reminders, alerts ----------------------------------------------------------------------


def test_app_home_fits_in_100_blocks_and_says_how_many_more():
    pending = [approval(approvalId=f"apr_{n}", version=n) for n in range(60)]
    recent = [decided(approvalId=f"apr_d{n}") for n in range(30)]
    view = app_home(pending, recent, test_mode=True)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    shown = texts(view["blocks"])
    assert "Waiting for review (60)" in shown and "more waiting" in shown and "more in" in shown
    first = buttons(view["blocks"])[0]
    assert ButtonRef.loads(first["value"]) == ButtonRef(approval_id="apr_0", version=0)
    empty = app_home([], [], test_mode=False)
    assert "Nothing is waiting" in texts(empty["blocks"])


def test_reminder_mentions_users_and_groups():
    text = reminder_text(approval(), ["U0ANN", "S0FINANCE"])
    assert "<@U0ANN>" in text and "<!subteam^S0FINANCE>" in text and "Refund $349.00 USD" in text


def test_alerts_are_one_line_each():
    error = {"type": "api_error", "code": None, "message": "Stripe is down\nretry later"}
    failed = decided(execution={"status": "failed", "error": error})
    cases = {
        "execution_failed": (failed, "Stripe is down retry later"),
        "expired": (approval(status="expired"), "Expired without a decision"),
        "auto_approved": (decided(decidedBy={"type": "rule", "name": "small"}, rule="small"), "rule “small”"),
    }
    for kind, (subject, expected) in cases.items():
        text = alert_text(kind, subject, "https://fake.slack.com/archives/C0REVIEW/p1")
        assert "\n" not in text and expected in text and "apr_01HZX" in text
        assert text.endswith("|Open the request>")
    assert "Open the request" not in alert_text("expired", approval(), None)
    with pytest.raises(ValueError):
        alert_text("exploded", approval(), None)


# -- Slack accepts all of it ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slack():
    fake = FakeSlack(token=TOKEN)
    with fake.serving() as base_url:
        yield fake, base_url


async def test_slack_accepts_the_messages_and_their_update(slack):
    fake, base_url = slack
    client = AsyncWebClient(token=TOKEN, base_url=base_url)
    long_text = approval(
        summary="x" * 5000,
        justification="y" * 5000,
        details={**approval()["details"], "metadata": {f"k{n}": "v" * 200 for n in range(40)}},
    )
    for subject in (approval(), payout_jpy(), long_text):
        text, blocks = review_message(subject, connection_name="c", test_mode=True, version=1, confirm_over_minor=1)
        posted = await client.chat_postMessage(channel=REVIEW, text=text, blocks=blocks)
        text, blocks = decided_message(decided(), connection_name="c", test_mode=True)
        await client.chat_update(channel=REVIEW, ts=posted["ts"], text=text, blocks=blocks)
        assert not buttons(fake.message(REVIEW, posted["ts"])["blocks"])


async def test_slack_accepts_the_modals_and_the_home_view(slack):
    fake, base_url = slack
    client = AsyncWebClient(token=TOKEN, base_url=base_url)
    await client.views_open(trigger_id="trigger-reject", view=reject_modal(approval(), 1))
    await client.views_open(
        trigger_id="trigger-edit", view=edit_modal(approval(), 1, get_action("issue_refund").editable)
    )
    cancel = approval(action="cancel_subscription", details={"subscription_id": "sub_1"})
    await client.views_open(
        trigger_id="trigger-cancel", view=edit_modal(cancel, 1, get_action("cancel_subscription").editable)
    )
    pending = [approval(approvalId=f"apr_{n}") for n in range(60)]
    await client.views_publish(user_id="U0ANN", view=app_home(pending, [decided()] * 30, test_mode=False))
    assert len(fake.home_views["U0ANN"]["blocks"]) <= 100
