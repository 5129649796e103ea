"""The reviewer's experience end to end: signed requests into /slack/events, a fake Slack Web API."""

import json

import pytest

from api.audit.models import AuditEvent
from bot.ids import field_block_id
from tests.conftest import REFUND
from tests.fakes.stripe import FakeStripe
from tests.slack_helpers import (
    APPROVER,
    REVIEW,
    STRANGER,
    has_buttons,
    slack_harness,
    text_input,
)


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


async def test_request_edit_and_approve_end_to_end(make_settings, clock):
    with FakeStripe() as stripe:
        charge = stripe.add_charge(amount=34900, currency="usd")
        details = {**REFUND["details"], "charge_id": charge["id"]}
        async with slack_harness(make_settings, clock, stripe_secret_key="sk_test_123",
                                 stripe_api_base=stripe.url) as slack:
            created = await slack.request({**REFUND, "details": details})
            await slack.settle()

            # The review message: the facts, the money in words, the buttons.
            message = await slack.message(created["approvalId"])
            shown = json.dumps(message["blocks"], ensure_ascii=False)
            assert "$349.00 USD" in shown and "support-agent" in shown and "TEST MODE" in shown
            assert "duplicate charge within dispute window" in shown
            labels = [e["text"]["text"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
            assert [label.split()[0] for label in labels] == ["Approve", "Reject", "Edit"]

            # Someone who is not an approver is refused, privately, and nothing is recorded.
            await slack.click("approve", created["approvalId"], user=STRANGER)
            assert "Only approvers" in slack.ephemerals_to(STRANGER)[-1]
            assert (await slack.approval(created["approvalId"]))["status"] == "pending"
            async with slack.container.db.read() as session:
                refused = (await session.execute(
                    AuditEvent.__table__.select().where(AuditEvent.event == "decision.refused"))).all()
            assert [r.actor["id"] for r in refused] == [STRANGER]

            # An approver edits the amount down and approves in the modal.
            await slack.click("edit", created["approvalId"])
            view = slack.last_view()
            amount_block = field_block_id("amount_cents")
            assert any(b.get("block_id") == amount_block for b in view["blocks"])
            response = await slack.submit(view, {amount_block: {"amount": text_input("174.50")},
                                                 "note": {"note": text_input("Half, per policy.")}})
            assert response.status_code == 200 and not response.content.strip(b"{}")
            await slack.settle()

            final = await slack.approval(created["approvalId"])
            assert final["status"] == "approved"
            assert final["modifiedDetails"] == {**details, "amount_cents": 17450}
            assert final["changes"] == {"amount_cents": {"from": 34900, "to": 17450}}
            assert final["decidedBy"] == {"type": "slack_user", "id": APPROVER, "name": APPROVER.lower()}
            assert stripe.refunds[0]["amount"] == 17450

            message = await slack.message(created["approvalId"])
            shown = json.dumps(message["blocks"], ensure_ascii=False)
            assert not has_buttons(message)
            assert f"<@{APPROVER}>" in shown and "Half, per policy." in shown
            assert "$349.00 USD → $174.50 USD" in shown
            assert "succeeded" in shown and stripe.refunds[0]["id"] in shown
            assert [m["channel"] for m in slack.fake.calls_to("chat.update")] == [REVIEW] * len(
                slack.fake.calls_to("chat.update"))
