"""A later outcome from Stripe, as people see it in Slack: a reply in the review message's thread, an
alert in the finance channel, and the review message itself refreshed — each once per change.

The request is approved by a signed click into /slack/events, executed against the fake Stripe, and
Stripe's event arrives signed at /stripe/webhook; Slack's side is read from the fake Slack Web API.
"""

from pathlib import Path
from typing import Any

from tests.fakes.slack import FakeSlack
from tests.fakes.stripe_events import payout_paid, refund_failed, signed
from tests.slack_helpers import ALERTS, REVIEW, SlackHarness, has_buttons
from tests.stripe_webhook_harness import WEBHOOK_SECRET, Harness, harness

UPDATED = "approval.execution_updated"


def thread_replies(slack: FakeSlack, ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages_in(REVIEW) if m["thread_ts"] == ts]


async def approved_by_click_and_executed(h: Harness, action: str, details: dict[str, Any]) -> tuple[str, str]:
    """The request posted for review, approved with the button, executed; its id and message ts."""
    approval_id = await h.request(action, details)
    await h.container.worker.drain()
    slack = SlackHarness(h.slack, h.container, h.http, h.auth)
    response = await slack.click("approve", approval_id)
    assert response.status_code == 200
    await slack.settle()
    await h.container.worker.drain()
    _, ts = await slack.location(approval_id)
    assert (await h.approval(approval_id))["execution"]["status"] == "succeeded"
    return approval_id, ts


async def test_a_failed_refund_is_told_in_the_thread_and_to_finance_and_the_message_shows_it(make_settings, clock):
    async with harness(make_settings, clock, with_slack=True) as h:
        charge = h.stripe.add_charge(amount=34900, currency="usd")
        approval_id, ts = await approved_by_click_and_executed(h, "issue_refund", {
            "charge_id": charge["id"], "amount_cents": 34900, "currency": "usd", "reason": "duplicate"})
        refund = h.stripe.refunds[0]
        alerts_before = len(h.slack.messages_in(ALERTS))
        assert thread_replies(h.slack, ts) == []

        body, headers = signed(refund_failed(refund, reason="lost_or_stolen_card"), WEBHOOK_SECRET)
        response = await h.http.post("/stripe/webhook", content=body, headers=headers)
        await h.container.worker.drain()

        assert response.json()["outcome"] == "applied"
        (reply,) = thread_replies(h.slack, ts)
        assert refund["id"] in reply["text"] and "*failed*" in reply["text"]
        assert "lost_or_stolen_card" in reply["text"]
        alerts = h.slack.messages_in(ALERTS)[alerts_before:]
        assert len(alerts) == 1
        assert approval_id in alerts[0]["text"] and refund["id"] in alerts[0]["text"]
        message = h.slack.message(REVIEW, ts)
        assert "failed" in str(message["blocks"]) and "lost or stolen card" in str(message["blocks"])
        assert not has_buttons(message)
        assert len(h.callbacks(UPDATED)) == 1

        # The same event again: recorded once, told once.
        again = await h.http.post("/stripe/webhook", content=body, headers=headers)
        await h.container.worker.drain()
        assert again.json()["outcome"] == "duplicate"
        assert len(thread_replies(h.slack, ts)) == 1
        assert len(h.slack.messages_in(ALERTS)) == alerts_before + 1
        assert len(h.callbacks(UPDATED)) == 1


async def test_a_paid_payout_is_told_in_the_thread_as_paid(make_settings, clock):
    async with harness(make_settings, clock, with_slack=True) as h:
        approval_id, ts = await approved_by_click_and_executed(h, "create_payout",
                                                               {"amount_cents": 50000, "currency": "usd"})
        response = await h.deliver(payout_paid(h.stripe.payouts[0]))
        await h.container.worker.drain()

        assert response.json()["outcome"] == "applied"
        (reply,) = thread_replies(h.slack, ts)
        assert "*paid*" in reply["text"] and "failed" not in reply["text"]
        assert "now *paid*" in str(h.slack.message(REVIEW, ts)["blocks"])
        assert any(approval_id in m["text"] and "*paid*" in m["text"] for m in h.slack.messages_in(ALERTS))


async def test_a_rule_approved_refund_that_fails_later_is_told_to_finance_only(make_settings, clock):
    policy = Path(__file__).parent / "policies" / "contract_example.yaml"  # small duplicate refunds: approve
    async with harness(make_settings, clock, with_slack=True, policy_file=policy) as h:
        charge = h.stripe.add_charge(amount=4000, currency="usd")
        body = {"action": "issue_refund", "summary": "Small duplicate", "callbackUrl": h.hook_url,
                "details": {"charge_id": charge["id"], "amount_cents": 4000, "currency": "usd",
                            "reason": "duplicate"}}
        created = await h.http.post("/v1/approvals", json=body, headers=h.auth)
        assert created.status_code == 200 and created.json()["status"] == "approved"
        await h.container.worker.drain()
        alerts_before = len(h.slack.messages_in(ALERTS))  # the rule's own "approved automatically" alert

        response = await h.deliver(refund_failed(h.stripe.refunds[0]))
        await h.container.worker.drain()

        assert response.json()["outcome"] == "applied"
        assert h.slack.messages_in(REVIEW) == []  # no review message, so no thread to reply in
        (alert,) = h.slack.messages_in(ALERTS)[alerts_before:]
        assert h.stripe.refunds[0]["id"] in alert["text"] and "*failed*" in alert["text"]
        assert len(h.callbacks(UPDATED)) == 1
