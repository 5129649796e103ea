"""Revoking a Connection reaches its work in flight.

The attack, on a service without this: revoke a Connection from the CLI, then an approver still approves
its pending request in Slack and the money moves, or an approval queued for execution still runs. Here
the revocation (a separate `cheqpoint` process, configured like the service) cancels the pending
requests through the usual effects, and the worker refuses to start what was queued before it.
"""

import json
from datetime import UTC, datetime

from sqlalchemy import select

from api.callbacks.models import CallbackDelivery
from api.connections.models import Connection
from bot.ids import review_actions_block_id
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.fakes.stripe import FakeStripe
from tests.operator_cli import operator_cli, this_operator
from tests.slack_helpers import (
    APPROVER,
    PAYOUT,
    REVIEW,
    SECRET,
    TOKEN,
    block_actions,
    button_value,
    has_buttons,
    interactivity_body,
    slack_harness,
)


async def the_connection(slack) -> Connection:
    async with slack.container.db.read() as session:
        return (await session.scalars(select(Connection))).one()


def revoke(slack, database_url: str, connection_id: str) -> str:
    """`cheqpoint connections revoke` with the service's Slack settings, as an operator runs it."""
    settings = slack.container.settings
    result = operator_cli(database_url, "connections", "revoke", connection_id,
                          SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=settings.slack_api_url,
                          CHEQPOINT_REVIEW_CHANNEL=REVIEW, CHEQPOINT_APPROVERS=",".join(settings.approvers))
    assert result.returncode == 0, result.stderr
    # The CLI queued its jobs on the wall clock; the service's clock, held by the test, catches up.
    slack.container.clock.now = max(slack.container.clock.now, datetime.now(UTC))
    return result.stdout


async def deliveries(slack) -> list[CallbackDelivery]:
    async with slack.container.db.read() as session:
        return list((await session.scalars(select(CallbackDelivery).order_by(CallbackDelivery.created_at))).all())


async def test_revoking_cancels_pending_requests_and_a_later_click_changes_nothing(make_settings, clock,
                                                                                   database_url):
    with FakeStripe() as stripe:
        stripe.set_balance("usd", 1_000_000)
        async with slack_harness(make_settings, clock, stripe_secret_key="sk_test_123",
                                 stripe_api_base=stripe.url) as slack:
            connection = await the_connection(slack)
            receiver = CallbackReceiver(connection.webhook_secret)
            with serve(receiver.app) as hooks:
                created = await slack.request({**PAYOUT, "execute": True, "callbackUrl": f"{hooks}/cheqpoint"})
                approval_id = created["approvalId"]
                await slack.settle()
                channel, ts = await slack.location(approval_id)
                # The approver's client still shows the buttons it was sent before the revocation.
                stale_approve = button_value(slack.fake.message(channel, ts)["blocks"], approval_id, "approve")

                output = revoke(slack, database_url, connection.id)
                assert "cancelled 1 pending approval" in output and approval_id in output
                await slack.settle()

                approval = await slack.container.approvals.get(None, approval_id)
                assert approval.status == "cancelled" and approval.decided_by["type"] == "system"
                assert "revoked" in (approval.decision_note or "")
                assert not has_buttons(await slack.message(approval_id))  # the message was told
                (event,) = receiver.wait_for_events(1)  # and so was the agent
                assert event.payload["type"] == "approval.cancelled"
                assert event.payload["data"]["decidedBy"]["type"] == "system"

                # The attack: an approver clicks Approve on the message as it was.
                click = block_actions("approve", stale_approve, review_actions_block_id(approval_id), user=APPROVER,
                                      channel=channel, message_ts=ts)
                response = await slack.send(interactivity_body(click))
                assert response.status_code == 200
                await slack.settle()
                approval = await slack.container.approvals.get(None, approval_id)
                assert approval.status == "cancelled" and approval.execution_status == "not_requested"
                assert stripe.requests_to("POST", "/v1/payouts") == []
                assert await slack.audit("approval.approved") == [] and await slack.audit("approval.vote") == []

                (revoked,) = await slack.audit("connection.revoked")
                assert {k: revoked.actor[k] for k in ("type", "id", "host")} == this_operator()
                assert revoked.detail == {"cancelledApprovals": [approval_id]}
                slack.container.key_cache.clear()  # the revocation came from another process
                assert (await slack.http.get("/v1/approvals", headers=slack.auth)).status_code == 401


async def test_an_approved_execution_of_a_revoked_connection_is_not_sent_to_stripe(make_settings, clock,
                                                                                   database_url):
    with FakeStripe() as stripe:
        stripe.set_balance("usd", 1_000_000)
        async with slack_harness(make_settings, clock, stripe_secret_key="sk_test_123",
                                 stripe_api_base=stripe.url) as slack:
            connection = await the_connection(slack)
            receiver = CallbackReceiver(connection.webhook_secret)
            with serve(receiver.app) as hooks:
                created = await slack.request({**PAYOUT, "execute": True, "callbackUrl": f"{hooks}/cheqpoint"})
                approval_id = created["approvalId"]
                await slack.settle()
                await slack.click("approve", approval_id)  # approved; its execution and callback are queued
                approval = await slack.container.approvals.get(None, approval_id)
                assert approval.status == "approved" and approval.execution_status == "queued"

                output = revoke(slack, database_url, connection.id)
                assert "cancelled 0 pending approval" in output
                await slack.settle()
                await slack.settle()

                assert stripe.requests_to("POST", "/v1/payouts") == []  # no money moved
                approval = await slack.container.approvals.get(None, approval_id)
                assert approval.execution_status == "failed"
                assert approval.execution_error["code"] == "connection_revoked"
                assert "nothing was sent to Stripe" in approval.execution_error["message"]

                # The `approved` callback queued before the revocation is not attempted; the agent is told
                # only that its execution failed, by a callback the revocation itself led to.
                rows = {d.event_type: d for d in await deliveries(slack)}
                approved = rows["approval.approved"]
                assert approved.status == "failed" and approved.attempts == 0 and "revoked" in approved.last_error
                assert [e.payload["type"] for e in receiver.wait_for_events(1)] == ["approval.execution_failed"]
                assert all(json.loads(a.body)["type"] != "approval.approved" for a in receiver.attempts)
