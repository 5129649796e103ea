"""Callbacks end to end: decisions become signed deliveries to a real receiver on 127.0.0.1.

The worker is stopped in these tests; `container.worker.drain()` runs what is due, and the injected
clock is moved to each scheduled retry. The receiver checks every delivery with `standardwebhooks`.
"""

from datetime import datetime

import pytest
from sqlalchemy import update

from api.approvals.models import Approval
from tests.callback_flow_helpers import (  # noqa: F401 -- the *_fixture names are used by fixture name
    BOB,
    OPS,
    POLICIES,
    attempts,
    callback_jobs,
    create,
    deliveries,
    hook_url_fixture,
    new_connection,
    receiver_fixture,
    service,
    verified,
)
from tests.conftest import REFUND
from tests.fakes.stripe import FakeStripe

# ---- one callback per final event --------------------------------------------------------------------

async def test_an_edited_approval_calls_back_once_signed(client, auth, container, clock, connection, receiver,
                                                         hook_url):
    created = await create(client, auth, hook_url)
    approval_id = created["approvalId"]
    await container.worker.drain()
    assert await deliveries(container) == []  # pending: nothing to tell yet

    await container.decisions.decide(approval_id, OPS, "approve", note="Half, per policy",
                                     edits={"amount_cents": 17450})
    await container.worker.drain()
    await container.worker.drain()  # nothing more is sent once delivered

    assert len(receiver.attempts) == 1 and receiver.rejected == []
    (event,) = receiver.events
    payload = verified(event, connection["secret"])
    assert payload["type"] == "approval.approved"
    assert datetime.fromisoformat(payload["timestamp"]) == clock()  # when it was decided
    data = payload["data"]
    assert data == (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert data["status"] == "approved" and data["decisionNote"] == "Half, per policy"
    assert data["modifiedDetails"] == {**REFUND["details"], "amount_cents": 17450}
    assert data["changes"] == {"amount_cents": {"from": 34900, "to": 17450}}
    assert data["decidedBy"] == {"type": "operator", "id": "UOPS", "name": "ops"}
    assert "x-cheqpoint-signature" not in event.headers  # that one is for the compatible API only

    (delivery,) = await deliveries(container)
    assert event.webhook_id == delivery.id and delivery.id.startswith("msg_")
    assert event.body == delivery.body.encode()  # exactly the stored bytes were signed and sent
    assert (delivery.event_type, delivery.status, delivery.attempts) == ("approval.approved", "delivered", 1)
    assert delivery.delivered_at is not None and delivery.last_error is None
    (attempt,) = await attempts(container, delivery.id)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 200, None)
    assert [job.status for job in await callback_jobs(container)] == ["done"]


async def _reject(client, auth, container, clock, approval_id):
    await container.decisions.decide(approval_id, OPS, "reject", note="Not a duplicate")


async def _cancel(client, auth, container, clock, approval_id):
    response = await client.post(f"/v1/approvals/{approval_id}/cancel", headers=auth)
    assert response.status_code == 200, response.text


async def _expire(client, auth, container, clock, approval_id):
    clock.advance(hours=25)


@pytest.mark.parametrize(("end", "event", "decider"), [
    (_reject, "approval.rejected", "operator"),
    (_cancel, "approval.cancelled", None),
    (_expire, "approval.expired", "system"),
])
async def test_every_final_decision_calls_back(client, auth, container, clock, connection, receiver, hook_url,
                                               end, event, decider):
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    await end(client, auth, container, clock, approval_id)
    await container.worker.drain()

    (received,) = receiver.events
    payload = verified(received, connection["secret"])
    assert payload["type"] == event
    assert payload["data"]["approvalId"] == approval_id
    assert payload["data"]["status"] == event.removeprefix("approval.")
    if decider:
        assert payload["data"]["decidedBy"]["type"] == decider
    assert [d.event_type for d in await deliveries(container)] == [event]


async def test_no_url_no_callback_and_votes_are_not_final(make_settings, clock, receiver, hook_url):
    async with service(make_settings, clock, policy_file=POLICIES / "contract_example.yaml") as (container, client):
        conn = await new_connection(container)
        receiver.secret = conn["secret"]
        silent = await create(client, conn["auth"], None)
        await container.decisions.decide(silent["approvalId"], OPS, "reject", note="no")
        # "large refunds" needs two approvals: the first is a vote, not a decision.
        big = await create(client, conn["auth"], hook_url, details={**REFUND["details"], "amount_cents": 200_000})
        first = await container.decisions.decide(big["approvalId"], OPS, "approve")
        assert first.outcome == "vote"
        await container.worker.drain()
        assert await deliveries(container) == [] and receiver.attempts == []

        await container.decisions.decide(big["approvalId"], BOB, "approve")
        await container.worker.drain()
        (event,) = receiver.events
        data = verified(event, conn["secret"])["data"]
        assert data["status"] == "approved" and len(data["approvals"]) == 2


async def test_rules_decisions_call_back(make_settings, clock, receiver, hook_url):
    async with service(make_settings, clock, policy_file=POLICIES / "contract_example.yaml") as (container, client):
        conn = await new_connection(container)
        receiver.secret = conn["secret"]
        small = await create(client, conn["auth"], hook_url, expect=(200,),
                             details={**REFUND["details"], "amount_cents": 4000})
        payout = await create(client, conn["auth"], hook_url, expect=(200,), action="create_payout",
                              summary="Payout", details={"amount_cents": 6_000_000, "currency": "usd"})
        await container.worker.drain()

        payloads = [verified(e, conn["secret"]) for e in receiver.events]
        by_id = {p["data"]["approvalId"]: p for p in payloads}
        assert len(receiver.events) == 2
        assert by_id[small["approvalId"]]["type"] == "approval.approved"
        assert by_id[small["approvalId"]]["data"]["decidedBy"]["type"] == "rule"
        assert by_id[small["approvalId"]]["data"]["rule"] == "small duplicate refunds"
        assert by_id[payout["approvalId"]]["type"] == "approval.rejected"
        assert by_id[payout["approvalId"]]["data"]["decisionNote"] == "Payouts above $50,000 are made by hand."


async def test_the_end_of_an_execution_calls_back_too(make_settings, clock, receiver, hook_url):
    with FakeStripe() as stripe:
        charge = stripe.add_charge(amount=34900)
        async with service(make_settings, clock, stripe_secret_key="sk_test_123",
                           stripe_api_base=stripe.url) as (container, client):
            conn = await new_connection(container)
            receiver.secret = conn["secret"]
            details = {**REFUND["details"], "charge_id": charge["id"]}
            approval_id = (await create(client, conn["auth"], hook_url, execute=True, details=details))["approvalId"]
            await container.decisions.decide(approval_id, OPS, "approve", edits={"amount_cents": 17450})
            await container.worker.drain()

    payloads = [verified(e, conn["secret"]) for e in receiver.events]
    assert [p["type"] for p in payloads] == ["approval.approved", "approval.executed"]
    assert payloads[0]["data"]["execution"]["status"] == "queued"
    execution = payloads[1]["data"]["execution"]
    assert execution["status"] == "succeeded" and execution["stripeObjectId"].startswith("re_")
    assert execution["result"]["amount"] == 17450
    assert len({e.webhook_id for e in receiver.events}) == 2  # one id per event


async def test_a_failed_execution_calls_back(client, auth, container, connection, receiver, hook_url):
    # The fixture's settings have no Stripe key: the execution fails, clearly, and the agent is told.
    approval_id = (await create(client, auth, hook_url, execute=True))["approvalId"]
    await container.decisions.decide(approval_id, OPS, "approve")
    await container.worker.drain()

    payloads = [verified(e, connection["secret"]) for e in receiver.events]
    assert [p["type"] for p in payloads] == ["approval.approved", "approval.execution_failed"]
    assert payloads[1]["data"]["execution"]["status"] == "failed"
    assert payloads[1]["data"]["execution"]["error"]["code"] == "stripe_not_configured"


async def test_compatible_requests_get_the_compatible_body_and_signature(client, auth, container, connection,
                                                                         receiver, hook_url):
    pytest.importorskip("api.compat.schemas")
    receiver.check_compat_signature = True
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    # Made through the native API for this test's sake; the compatible routes store surface="compat".
    await container.db.write(lambda s: s.execute(update(Approval).where(Approval.id == approval_id)
                                                 .values(surface="compat")))
    await container.decisions.decide(approval_id, OPS, "reject", note="Wrong customer")
    await container.worker.drain()

    assert receiver.rejected == []
    (event,) = receiver.events  # the receiver checked x-cheqpoint-signature as well
    payload = verified(event, connection["secret"])
    assert payload["type"] == "approval.rejected"
    assert payload["id"] == payload["approvalId"] == approval_id
    assert payload["status"] == "REJECTED" and payload["retryable"] is False
    assert payload["decisionNote"] == payload["responseNotes"] == "Wrong customer"
    assert payload["execution"]["status"] == "not_requested"
    (delivery,) = await deliveries(container)
    assert delivery.compat_signature is True
