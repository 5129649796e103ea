"""Exactly once when Stripe fails, refuses or is absent: retries with the same key, and final
refusals recorded at once.

Everything goes over the real wire to the fake Stripe API, as in test_execution.py.
"""

from sqlalchemy import update

from api.approvals.models import Approval
from api.execution.job import idempotency_key
from tests import execution_helpers as shared
from tests.conftest import REFUND
from tests.execution_fault_helpers import (
    SDK_TRIES,
    attempts_of,
    execution_events,
    job_of,
    read,
    refund_posts,
    refund_request,
)
from tests.execution_helpers import OPS, request

# The fixtures of execution_helpers.py: the fake Stripe API, the service configured for it, its API
# client and an agent's credentials.
fake = shared.fake
stripe_container = shared.stripe_container
api = shared.api
agent = shared.agent


# -- Stripe failing for a while ----------------------------------------------------------------------


async def test_server_errors_are_retried_with_the_same_key_until_stripe_answers(api, agent, stripe_container,
                                                                               fake, clock):
    approval_id, charge_id = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    fake.fail_next(SDK_TRIES, 500)

    await stripe_container.worker.drain()

    assert [r.status for r in refund_posts(fake)] == [500] * SDK_TRIES
    assert fake.refunds == []
    job = await job_of(stripe_container, approval_id)
    assert job.status == "queued" and job.run_at > clock() and "500" in job.last_error
    assert (await read(api, agent, approval_id))["execution"]["status"] == "running"
    await stripe_container.worker.drain()
    assert len(refund_posts(fake)) == SDK_TRIES  # not before its back-off

    clock.advance(minutes=5)
    await stripe_container.worker.drain()

    posts = refund_posts(fake)
    assert [r.status for r in posts] == [500] * SDK_TRIES + [200]
    assert {r.idempotency_key for r in posts} == {idempotency_key(approval_id)}
    assert {str(r.params) for r in posts} == {str({"charge": charge_id, "amount": "34900", "reason": "duplicate"})}
    assert len(fake.refunds) == 1
    execution = (await read(api, agent, approval_id))["execution"]
    assert execution["status"] == "succeeded" and execution["stripeObjectId"] == fake.refunds[0]["id"]
    job = await job_of(stripe_container, approval_id)
    assert (job.status, job.attempts) == ("done", 2)
    assert [a.outcome for a in await attempts_of(stripe_container, job.id)] == ["retry", "done"]


async def test_rate_limits_are_retried_later_with_the_same_key(api, agent, stripe_container, fake, clock):
    approval_id, _ = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    fake.fail_next(2, 429)

    for _ in range(3):
        await stripe_container.worker.drain()
        clock.advance(minutes=5)

    posts = refund_posts(fake)
    assert [r.status for r in posts] == [429, 429, 200]
    assert {r.idempotency_key for r in posts} == {idempotency_key(approval_id)}
    assert len(fake.refunds) == 1
    assert (await read(api, agent, approval_id))["execution"]["status"] == "succeeded"
    attempts = await attempts_of(stripe_container, (await job_of(stripe_container, approval_id)).id)
    assert [a.outcome for a in attempts] == ["retry", "retry", "done"]
    assert "429" in attempts[0].error


async def test_stripe_unavailable_through_every_attempt_fails_the_execution_clearly(api, agent, stripe_container,
                                                                                   fake, clock):
    approval_id, _ = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    job = await job_of(stripe_container, approval_id)
    fake.fail_next(job.max_attempts + 5, 429)

    for _ in range(job.max_attempts + 3):
        await stripe_container.worker.drain()
        clock.advance(hours=2)

    assert len(refund_posts(fake)) == job.max_attempts  # then it stopped
    assert fake.refunds == []
    body = await read(api, agent, approval_id)
    assert body["status"] == "approved"
    error = body["execution"]["error"]
    assert body["execution"]["status"] == "failed"
    assert error["code"] == "rate_limit" and "429" in error["message"]
    # The operator is told which key to look for in Stripe's logs before doing anything by hand.
    assert idempotency_key(approval_id) in error["message"]
    assert (await job_of(stripe_container, approval_id)).status == "done"


# -- final refusals: recorded at once, never retried -------------------------------------------------


async def test_a_card_error_fails_the_execution_without_retrying(api, agent, stripe_container, fake, clock):
    approval_id, _ = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    fake.card_error_next("expired_card", message="Your card has expired.")

    await stripe_container.worker.drain()
    clock.advance(hours=1)
    await stripe_container.worker.drain()

    assert [r.status for r in refund_posts(fake)] == [402]
    assert fake.refunds == []
    execution = (await read(api, agent, approval_id))["execution"]
    assert execution["status"] == "failed" and execution["stripeObjectId"] is None
    assert execution["error"] == {"type": "card_error", "code": "expired_card", "message": "Your card has expired."}
    job = await job_of(stripe_container, approval_id)
    assert (job.status, job.attempts) == ("done", 1)
    assert await execution_events(stripe_container, approval_id) == ["execution.running", "execution.failed"]


async def test_an_invalid_request_fails_the_execution_without_retrying(api, agent, stripe_container, fake, clock):
    # Stripe refuses the amount (refunded elsewhere between our last read and the call).
    charge = fake.add_charge(amount=34900)
    approval_id = await request(api, agent, "issue_refund", {"charge_id": charge["id"], "amount_cents": 10000})
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    fake.fail_next(1, 400, code="amount_too_large",
                   message="Refund amount (10000) is greater than unrefunded amount on charge (4900)")

    await stripe_container.worker.drain()
    clock.advance(hours=1)
    await stripe_container.worker.drain()

    assert len(refund_posts(fake)) == 1 and fake.refunds == []
    error = (await read(api, agent, approval_id))["execution"]["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "amount_too_large")
    assert "greater than unrefunded amount" in error["message"]
    assert (await job_of(stripe_container, approval_id)).attempts == 1


async def test_details_that_no_longer_validate_fail_the_execution_without_retrying(api, agent, stripe_container,
                                                                                  fake, clock):
    approval_id, _ = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    # A request stored under an earlier catalogue, whose details today's rules refuse.
    await stripe_container.db.write(lambda session: session.execute(
        update(Approval).where(Approval.id == approval_id).values(details={"charge_id": "pi_NotACharge"})))

    before = len(fake.requests)  # the reads that verified it at intake
    await stripe_container.worker.drain()
    clock.advance(hours=1)
    await stripe_container.worker.drain()

    assert fake.requests[before:] == []
    execution = (await read(api, agent, approval_id))["execution"]
    assert execution["status"] == "failed"
    assert execution["error"]["type"] == "invalid_request_error"
    assert execution["error"]["code"] == "details_invalid"
    assert "charge_id" in execution["error"]["message"]
    job = await job_of(stripe_container, approval_id)
    assert (job.status, job.attempts) == ("done", 1)


async def test_without_a_stripe_key_executions_fail_clearly(client, auth, container, clock):
    # The conftest service has no STRIPE_SECRET_KEY.
    approval_id = (await client.post("/v1/approvals", json=REFUND, headers=auth)).json()["approvalId"]
    await container.decisions.decide(approval_id, OPS, "approve", edits={"amount_cents": 100})
    await container.worker.drain()
    clock.advance(hours=1)
    await container.worker.drain()

    body = (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert body["status"] == "approved"
    assert body["execution"]["status"] == "failed"
    assert body["execution"]["error"]["type"] == "not_configured"
    assert body["execution"]["error"]["code"] == "stripe_not_configured"
    assert "STRIPE_SECRET_KEY" in body["execution"]["error"]["message"]
    assert (await job_of(container, approval_id)).attempts == 1

    lookup = await client.post("/v1/approvals", json={"action": "retrieve_balance", "summary": "Balance",
                                                      "details": {}}, headers=auth)
    assert lookup.status_code == 200
    assert lookup.json()["execution"]["status"] == "failed"
    assert lookup.json()["execution"]["error"]["code"] == "stripe_not_configured"
