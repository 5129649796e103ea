"""Exactly once under faults: a worker killed mid-call, and races between decisions and workers.

Everything goes over the real wire to the fake Stripe API, as in test_execution.py. Stripe failing,
refusing or absent is in test_execution_stripe_errors.py.
"""

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from api.approvals.actors import Actor
from api.execution.job import idempotency_key
from api.outbox.models import Job
from api.outbox.worker import Worker
from tests import execution_helpers as shared
from tests.execution_fault_helpers import (
    execution_events,
    job_of,
    kill_after_stripe_acted,
    read,
    refund_posts,
    refund_request,
    until,
)
from tests.execution_helpers import OPS, request

# The fixtures of execution_helpers.py: the fake Stripe API, the service configured for it, its API
# client and an agent's credentials.
fake = shared.fake
stripe_container = shared.stripe_container
api = shared.api
agent = shared.agent


# -- a worker killed mid-execution -------------------------------------------------------------------


async def test_a_worker_killed_after_stripe_refunded_leaves_exactly_one_refund(api, agent, stripe_container, fake,
                                                                               clock):
    approval_id, charge_id = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve", edits={"amount_cents": 20000})

    fake.delay_next(2.0)
    await kill_after_stripe_acted(stripe_container, lambda: len(fake.refunds) == 1)

    # The money moved, but nothing of it was recorded: the job is still held by the dead worker.
    job = await job_of(stripe_container, approval_id)
    assert job.status == "running" and job.attempts == 1
    assert (await read(api, agent, approval_id))["execution"]["status"] == "running"
    await stripe_container.worker.drain()
    assert len(refund_posts(fake)) == 1  # the lease still holds: nobody takes the job yet

    clock.advance(seconds=stripe_container.worker.lease.total_seconds() + 1)
    await stripe_container.worker.drain()

    first, second = refund_posts(fake)
    assert first.idempotency_key == second.idempotency_key == idempotency_key(approval_id)
    assert first.params == second.params == {"charge": charge_id, "amount": "20000", "reason": "duplicate"}
    assert (first.replayed, second.replayed) == (False, True)  # Stripe's stored answer, not a new refund
    assert len(fake.refunds) == 1
    assert fake.charges[charge_id]["amount_refunded"] == 20000
    execution = (await read(api, agent, approval_id))["execution"]
    assert execution["status"] == "succeeded"
    assert execution["stripeObjectId"] == fake.refunds[0]["id"] == execution["result"]["id"]
    assert (await job_of(stripe_container, approval_id)).status == "done"
    assert await execution_events(stripe_container, approval_id) == ["execution.running", "execution.succeeded"]


async def test_an_execution_interrupted_longer_ago_than_stripe_keeps_keys_is_not_sent_again(
        api, agent, stripe_container, fake, clock):
    """Stripe may forget an idempotency key after 24 hours: resending then could refund twice."""
    approval_id, _ = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    fake.delay_next(2.0)
    await kill_after_stripe_acted(stripe_container, lambda: len(fake.refunds) == 1)

    clock.advance(hours=25)  # the service was down for a day
    await stripe_container.worker.drain()

    assert len(refund_posts(fake)) == 1
    execution = (await read(api, agent, approval_id))["execution"]
    assert execution["status"] == "failed"
    assert execution["error"]["code"] == "outcome_unknown"
    assert idempotency_key(approval_id) in execution["error"]["message"]


async def test_a_long_queued_execution_that_never_started_still_runs(api, agent, stripe_container, fake, clock):
    approval_id, _ = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    clock.advance(hours=25)  # the worker was down before it ever took the job
    await stripe_container.worker.drain()
    assert len(fake.refunds) == 1
    assert (await read(api, agent, approval_id))["execution"]["status"] == "succeeded"


async def test_a_worker_killed_after_stripe_cancelled_a_subscription_records_the_cancellation(
        api, agent, stripe_container, fake, clock):
    """Stripe keeps no idempotency keys for DELETE, so the retry's DELETE is refused (the subscription
    is already cancelled); the cancellation that did happen must still be recorded as the outcome."""
    subscription = fake.add_subscription()
    approval_id = await request(api, agent, "cancel_subscription", {"subscription_id": subscription["id"]})
    await stripe_container.decisions.decide(approval_id, OPS, "approve")

    fake.delay_next(2.0)
    await kill_after_stripe_acted(stripe_container,
                                  lambda: fake.subscriptions[subscription["id"]]["status"] == "canceled")
    clock.advance(seconds=stripe_container.worker.lease.total_seconds() + 1)
    await stripe_container.worker.drain()

    deletes = fake.requests_to("DELETE", f"/v1/subscriptions/{subscription['id']}")
    assert [r.status for r in deletes] == [200, 400]
    execution = (await read(api, agent, approval_id))["execution"]
    assert execution["status"] == "succeeded", execution
    assert execution["stripeObjectId"] == subscription["id"]
    assert execution["result"]["status"] == "canceled"


async def test_a_subscription_cancelled_elsewhere_before_execution_is_not_reported_as_ours(
        api, agent, stripe_container, fake):
    subscription = fake.add_subscription()
    approval_id = await request(api, agent, "cancel_subscription", {"subscription_id": subscription["id"]})
    fake.subscriptions[subscription["id"]]["status"] = "canceled"  # in the dashboard, meanwhile
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    await stripe_container.worker.drain()

    execution = (await read(api, agent, approval_id))["execution"]
    assert execution["status"] == "failed"
    assert execution["error"]["type"] == "invalid_request_error"
    assert "is canceled" in execution["error"]["message"]
    assert fake.requests_to("DELETE", f"/v1/subscriptions/{subscription['id']}") == []


async def test_a_second_worker_taking_over_a_slow_call_records_it_once(api, agent, stripe_container, fake, clock):
    """The first worker is not dead, only slow: its lease lapses mid-call, another worker takes the
    job and finishes it, and then the first one's answer arrives too."""
    approval_id, _ = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    other = Worker(stripe_container.worker.context, stripe_container.registry, clock=clock)

    fake.delay_next(1.0)
    slow = asyncio.create_task(stripe_container.worker.run_once())
    await until(lambda: len(fake.refunds) == 1)
    clock.advance(seconds=stripe_container.worker.lease.total_seconds() + 1)
    assert await other.drain() == 1
    assert await slow == 1

    assert len(fake.refunds) == 1
    assert [r.replayed for r in refund_posts(fake)] == [False, True]
    execution = (await read(api, agent, approval_id))["execution"]
    assert execution["status"] == "succeeded" and execution["stripeObjectId"] == fake.refunds[0]["id"]
    # One recorded outcome, so one `executed` event: one Slack update, one callback.
    assert await execution_events(stripe_container, approval_id) == ["execution.running", "execution.succeeded"]


# -- races -------------------------------------------------------------------------------------------


async def test_racing_decisions_and_workers_make_one_refund(api, agent, stripe_container, fake, clock):
    approval_id, charge_id = await refund_request(api, agent, fake)
    other = Worker(stripe_container.worker.context, stripe_container.registry, clock=clock)
    decide = stripe_container.decisions.decide

    results = await asyncio.gather(
        decide(approval_id, OPS, "approve", edits={"amount_cents": 10000}),
        decide(approval_id, Actor("slack_user", "UALICE", "alice"), "approve", edits={"amount_cents": 20000}),
        decide(approval_id, Actor("slack_user", "UBOB", "bob"), "approve"),
    )
    assert sorted(r.outcome for r in results) == ["already_final", "already_final", "decided"]
    await asyncio.gather(stripe_container.worker.drain(), other.drain(), stripe_container.worker.drain())

    async with stripe_container.db.read() as session:
        jobs = (await session.scalars(select(Job).where(Job.kind == "stripe.execute"))).all()
    assert len(jobs) == 1
    [post] = refund_posts(fake)
    assert len(fake.refunds) == 1
    body = await read(api, agent, approval_id)
    winner = body["modifiedDetails"]["amount_cents"] if body["modifiedDetails"] else 34900
    assert post.params["amount"] == str(winner) == str(fake.refunds[0]["amount"])
    assert body["execution"]["stripeObjectId"] == fake.refunds[0]["id"]
    assert fake.charges[charge_id]["amount_refunded"] == winner


async def test_many_approvals_across_two_workers_each_execute_once(api, agent, stripe_container, fake, clock):
    ids = [(await refund_request(api, agent, fake, amount=1000 + i))[0] for i in range(6)]
    await asyncio.gather(*(stripe_container.decisions.decide(i, OPS, "approve") for i in ids))
    other = Worker(stripe_container.worker.context, stripe_container.registry, clock=clock, batch=2)
    fake.fail_next(1, 429)

    for _ in range(3):
        await asyncio.gather(stripe_container.worker.drain(), other.drain())
        clock.advance(minutes=5)

    assert sorted(r["amount"] for r in fake.refunds) == [1000 + i for i in range(6)]
    keys = [r.idempotency_key for r in refund_posts(fake) if r.status == 200]
    assert sorted(keys) == sorted(idempotency_key(i) for i in ids)
    for approval_id in ids:
        assert (await read(api, agent, approval_id))["execution"]["status"] == "succeeded"


async def test_a_rerun_of_a_finished_execution_calls_nothing(api, agent, stripe_container, fake, clock):
    approval_id, _ = await refund_request(api, agent, fake)
    await stripe_container.decisions.decide(approval_id, OPS, "approve")
    await stripe_container.worker.drain()
    # An operator (or a bug) puts the finished job back in the queue.
    await stripe_container.db.write(lambda session: session.execute(
        update(Job).where(Job.key == f"execute:{approval_id}").values(status="queued", run_at=clock())))

    await stripe_container.worker.drain()

    assert len(refund_posts(fake)) == 1
    assert await execution_events(stripe_container, approval_id) == ["execution.running", "execution.succeeded"]


async def test_the_lease_outlasts_a_stripe_call_with_its_retries(stripe_container):
    """A live worker must not lose its job to another in the middle of a call (timeout 30 s, two
    network retries): the heartbeat renews the lease while the job runs (tests/test_slack_crash.py
    shows a job outliving its lease), and renews it thrice per lease, so one slow beat costs nothing."""
    assert stripe_container.worker.lease >= timedelta(seconds=10)
