"""The Block Kit builders for the review message and the decided message: what reviewers read.

Modals are in test_blocks_modals.py; App Home, reminders and alerts in test_blocks_home.py; Slack
(the fake) accepting every payload in test_blocks_accepted.py.
"""

import json

import pytest

from bot.blocks import (
    decided_message,
    review_message,
)
from bot.ids import ActionId, ButtonRef
from tests.blocks_helpers import approval, buttons, decided, payout_jpy, texts

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
