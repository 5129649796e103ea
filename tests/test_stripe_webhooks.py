"""Reconciliation from Stripe's webhooks, over the real wire: an execution really runs through the API
and the fake Stripe, then Stripe's event arrives at POST /stripe/webhook signed as Stripe signs it, and
the agent's callback is read from a real receiver. Slack's side is in test_stripe_webhooks_slack.py."""

import json
import time

import pytest

from api.stripe_webhooks.models import StripeEvent
from tests.fakes.stripe_events import (
    dispute_closed,
    payout_failed,
    payout_paid,
    refund_failed,
    refund_updated,
    signature_header,
    signed,
)
from tests.stripe_webhook_harness import WEBHOOK_SECRET, harness
from tests.test_cli import cheqpoint

UPDATED = "approval.execution_updated"


async def test_a_refund_that_fails_later_fails_the_execution_and_calls_the_agent_back_once(make_settings, clock):
    async with harness(make_settings, clock) as h:
        approval = await h.refund()
        refund = h.stripe.refunds[0]
        event = refund_failed(refund, reason="expired_or_canceled_card")

        response = await h.deliver(event)
        await h.container.worker.drain()

        assert response.status_code == 200, response.text
        assert response.json() == {"received": True, "outcome": "applied"}
        after = await h.approval(approval["approvalId"])
        execution = after["execution"]
        assert after["status"] == "approved"
        assert execution["status"] == "failed"
        assert execution["stripeObjectId"] == refund["id"]
        assert execution["result"]["status"] == "failed"
        assert execution["error"]["type"] == "refund_failed"
        assert execution["error"]["code"] == "expired_or_canceled_card"
        (callback,) = h.callbacks(UPDATED)
        assert callback.payload["data"]["execution"] == execution
        assert callback.payload["data"]["approvalId"] == approval["approvalId"]
        (audit,) = await h.updates_audited(approval["approvalId"])
        assert audit.actor == {"type": "system", "id": "stripe", "event": event["id"]}
        assert (audit.before["execution"], audit.after["execution"]) == ("succeeded", "failed")
        (row,) = await h.recorded()
        assert (row.id, row.type, row.object_id, row.approval_id, row.outcome) == (
            event["id"], "refund.failed", refund["id"], approval["approvalId"], "applied")


async def test_a_replayed_event_is_recorded_once_and_has_no_second_effect(make_settings, clock):
    async with harness(make_settings, clock) as h:
        approval = await h.refund()
        body, headers = signed(refund_failed(h.stripe.refunds[0]), WEBHOOK_SECRET)

        first = await h.http.post("/stripe/webhook", content=body, headers=headers)
        await h.container.worker.drain()
        again = await h.http.post("/stripe/webhook", content=body, headers=headers)
        # Stripe's own retry of a delivery is signed anew, with a later timestamp.
        resigned = {**headers, "Stripe-Signature": signature_header(body, WEBHOOK_SECRET,
                                                                    timestamp=int(time.time()) + 5)}
        third = await h.http.post("/stripe/webhook", content=body, headers=resigned)
        await h.container.worker.drain()

        assert first.json()["outcome"] == "applied"
        assert [r.status_code for r in (again, third)] == [200, 200]
        assert [r.json()["outcome"] for r in (again, third)] == ["duplicate", "duplicate"]
        assert await h.count(StripeEvent) == 1
        assert len(await h.updates_audited(approval["approvalId"])) == 1
        assert await h.deliveries(UPDATED) == 1
        assert len(h.callbacks(UPDATED)) == 1


@pytest.mark.parametrize("attack", ["wrong secret", "tampered body", "old timestamp", "no header",
                                    "garbage header"])
async def test_a_delivery_that_does_not_verify_is_refused_and_nothing_is_recorded(make_settings, clock, attack):
    async with harness(make_settings, clock) as h:
        approval = await h.refund()
        event = refund_failed(h.stripe.refunds[0])
        body, headers = signed(event, WEBHOOK_SECRET)
        if attack == "wrong secret":
            body, headers = signed(event, "whsec_someone_else")
        elif attack == "tampered body":
            body = body.replace(b'"expired_or_canceled_card"', b'"lost_or_stolen_card"')
        elif attack == "old timestamp":  # a captured delivery replayed six minutes later
            body, headers = signed(event, WEBHOOK_SECRET, timestamp=int(time.time()) - 360)
        elif attack == "no header":
            del headers["Stripe-Signature"]
        else:
            headers["Stripe-Signature"] = "t=abc,v1=zz"

        response = await h.http.post("/stripe/webhook", content=body, headers=headers)
        await h.container.worker.drain()

        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert await h.count(StripeEvent) == 0
        assert (await h.approval(approval["approvalId"]))["execution"]["status"] == "succeeded"
        assert h.callbacks(UPDATED) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"object": "event", "id": "evt_1"}',
                                  b"\xff\xfe not utf-8"])
async def test_a_signed_body_that_is_not_a_stripe_event_is_refused(make_settings, clock, body):
    async with harness(make_settings, clock) as h:
        stamp = int(time.time())
        # Signed over the raw bytes, as a sender with the secret would; the body itself is the problem.
        headers = {"Content-Type": "application/json",
                   "Stripe-Signature": signature_header(body, WEBHOOK_SECRET, timestamp=stamp)}
        response = await h.http.post("/stripe/webhook", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert await h.count(StripeEvent) == 0


async def test_without_a_webhook_secret_the_endpoint_is_not_there(make_settings, clock):
    async with harness(make_settings, clock, stripe_webhook_secret=None) as h:
        approval = await h.refund()
        response = await h.deliver(refund_failed(h.stripe.refunds[0]))
        assert response.status_code == 404
        assert (await h.approval(approval["approvalId"]))["execution"]["status"] == "succeeded"
        assert any("STRIPE_WEBHOOK_SECRET unset" in line for line in h.container.settings.describe())


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_webhook_secret_is_refused_naming_the_variable(database_url, value):
    result = cheqpoint(database_url, "db", "upgrade", STRIPE_WEBHOOK_SECRET=value)
    assert result.returncode == 2, result.stderr
    assert "STRIPE_WEBHOOK_SECRET" in result.stderr and "Traceback" not in result.stderr


async def test_an_event_for_an_object_we_never_touched_is_answered_and_ignored(make_settings, clock, caplog):
    async with harness(make_settings, clock) as h:
        approval = await h.refund()
        stranger = {**h.stripe.refunds[0], "id": "re_NotOneOfOurs0000000000"}
        event = refund_failed(stranger)

        with caplog.at_level("WARNING", logger="api.stripe_webhooks.service"):
            response = await h.deliver(event)
        await h.container.worker.drain()

        assert response.status_code == 200
        assert response.json()["outcome"] == "ignored"
        assert "re_NotOneOfOurs0000000000" in caplog.text
        (row,) = await h.recorded()
        assert (row.outcome, row.approval_id) == ("ignored", None)
        assert (await h.approval(approval["approvalId"]))["execution"]["status"] == "succeeded"
        assert h.callbacks(UPDATED) == []


async def test_an_event_from_the_other_mode_is_not_ours(make_settings, clock):
    async with harness(make_settings, clock) as h:  # a test-mode key: live events concern other objects
        approval = await h.refund()
        response = await h.deliver(refund_failed(h.stripe.refunds[0], livemode=True))
        assert response.json()["outcome"] == "ignored"
        assert (await h.approval(approval["approvalId"]))["execution"]["status"] == "succeeded"


async def test_an_older_update_after_the_failure_does_not_move_the_state_back(make_settings, clock):
    async with harness(make_settings, clock) as h:
        approval = await h.refund()
        refund = h.stripe.refunds[0]
        now = int(time.time())
        failed = refund_failed(refund, created=now)
        older = refund_updated(refund, status="succeeded", created=now - 60)

        assert (await h.deliver(failed)).json()["outcome"] == "applied"
        late = await h.deliver(older)
        await h.container.worker.drain()

        assert late.status_code == 200
        assert late.json()["outcome"] == "unchanged"
        execution = (await h.approval(approval["approvalId"]))["execution"]
        assert (execution["status"], execution["result"]["status"]) == ("failed", "failed")
        assert len(h.callbacks(UPDATED)) == 1
        assert len(await h.updates_audited(approval["approvalId"])) == 1


async def test_a_refund_updated_to_canceled_fails_the_execution(make_settings, clock):
    async with harness(make_settings, clock) as h:
        approval = await h.refund()
        response = await h.deliver(refund_updated(h.stripe.refunds[0], status="canceled"))
        execution = (await h.approval(approval["approvalId"]))["execution"]
        assert response.json()["outcome"] == "applied"
        assert (execution["status"], execution["error"]["code"]) == ("failed", "merchant_request")


async def test_a_payout_that_fails_fails_the_execution_with_stripes_reason(make_settings, clock):
    async with harness(make_settings, clock) as h:
        approval = await h.execute("create_payout", {"amount_cents": 50000, "currency": "usd"})
        payout = h.stripe.payouts[0]

        response = await h.deliver(payout_failed(payout, code="account_closed",
                                                 message="The bank account has been closed."))
        await h.container.worker.drain()

        assert response.json()["outcome"] == "applied"
        execution = (await h.approval(approval["approvalId"]))["execution"]
        assert execution["status"] == "failed"
        assert execution["error"]["type"] == "payout_failed"
        assert execution["error"]["code"] == "account_closed"
        assert "The bank account has been closed." in execution["error"]["message"]
        assert execution["result"]["failure_code"] == "account_closed"
        (callback,) = h.callbacks(UPDATED)
        assert callback.payload["data"]["execution"]["status"] == "failed"


async def test_a_paid_payout_is_recorded_and_stays_succeeded_and_a_late_failure_still_counts(make_settings, clock):
    async with harness(make_settings, clock) as h:
        approval = await h.execute("create_payout", {"amount_cents": 50000, "currency": "usd"})
        payout = h.stripe.payouts[0]
        now = int(time.time())

        paid = await h.deliver(payout_paid(payout, created=now))
        paid_again_later = await h.deliver(payout_paid(payout, created=now + 1))  # another event, same news
        execution = (await h.approval(approval["approvalId"]))["execution"]
        assert [paid.json()["outcome"], paid_again_later.json()["outcome"]] == ["applied", "unchanged"]
        assert (execution["status"], execution["result"]["status"], execution["error"]) == ("succeeded", "paid", None)

        # Stripe can fail a payout after it was paid (the bank returns it): that moves on from paid.
        failed = await h.deliver(payout_failed(payout, created=now + 2))
        await h.container.worker.drain()
        execution = (await h.approval(approval["approvalId"]))["execution"]
        assert failed.json()["outcome"] == "applied"
        assert execution["status"] == "failed"
        # One callback per change (delivered concurrently, so in no set order).
        assert sorted(c.payload["data"]["execution"]["result"]["status"] for c in h.callbacks(UPDATED)) == \
            ["failed", "paid"]


async def test_a_dispute_we_answered_records_its_final_status(make_settings, clock):
    async with harness(make_settings, clock) as h:
        charge = h.stripe.add_charge(amount=1000)
        dispute = h.stripe.add_dispute(charge=charge["id"], amount=1000)
        approval = await h.execute("submit_dispute_evidence", {
            "dispute_id": dispute["id"], "evidence": {"uncategorized_text": "Delivered, signed for."}})

        response = await h.deliver(dispute_closed(h.stripe.disputes[dispute["id"]], status="won"))
        await h.container.worker.drain()

        assert response.json()["outcome"] == "applied"
        execution = (await h.approval(approval["approvalId"]))["execution"]
        assert (execution["status"], execution["result"]["status"]) == ("succeeded", "won")
        assert len(h.callbacks(UPDATED)) == 1


async def test_an_event_type_we_do_not_act_on_is_answered_and_not_recorded(make_settings, clock):
    async with harness(make_settings, clock) as h:
        event = {"id": "evt_1Other", "object": "event", "type": "customer.created", "created": int(time.time()),
                 "livemode": False, "pending_webhooks": 1, "data": {"object": {"id": "cus_1", "object": "customer"}}}
        response = await h.deliver(event)
        assert (response.status_code, response.json()["outcome"]) == (200, "unhandled")
        assert await h.count(StripeEvent) == 0


def test_the_signed_body_is_the_bytes_sent():
    body, headers = signed({"id": "evt_1", "object": "event"}, WEBHOOK_SECRET, timestamp=1700000000)
    assert json.loads(body)["id"] == "evt_1"
    assert headers["Stripe-Signature"].startswith("t=1700000000,v1=")
