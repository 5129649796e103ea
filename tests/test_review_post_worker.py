"""The worker's batches (the review post's path, with a kind of the test's own): each job's outcome
is recorded as the single path records it, and jobs of other kinds keep their order."""

from datetime import timedelta

from sqlalchemy import select

from api.outbox.models import Job, JobAttempt
from api.outbox.registry import Backoff, Deferred, Park, Retry
from api.outbox.service import enqueue


async def jobs(container, kind: str) -> list[Job]:
    async with container.db.read() as session:
        return list((await session.scalars(select(Job).where(Job.kind == kind)
                                           .order_by(Job.payload["n"].as_integer()))).all())


async def test_each_job_of_a_batch_is_recorded_as_its_own_outcome_says(container, clock):
    answers = {0: None, 1: Retry("429", delay=30), 2: Park("channel_not_found"),
               3: Deferred("budget", delay=5, reservation="chat.postMessage:C1@123.000"), 4: RuntimeError("boom")}
    batches: list[list[int]] = []

    async def single(ctx, payload):  # a batch of five never runs it
        raise AssertionError("ran alone")

    async def batch(items):
        batches.append([item.payload["n"] for item in items])
        return [answers[item.payload["n"]] for item in items]

    container.registry.register("test.batched", single, backoff=Backoff(base=10, cap=100))
    container.registry.register_batch("test.batched", batch)
    for n in range(5):
        await container.db.write(lambda s, n=n: enqueue(s, "test.batched", {"n": n}, max_attempts=3))
    assert await container.worker.run_once() == 5
    assert len(batches) == 1 and sorted(batches[0]) == [0, 1, 2, 3, 4]  # one call (RETURNING has no order)

    done, limited, parked, deferred, failed = await jobs(container, "test.batched")
    now = clock()
    assert (done.status, done.attempts, done.last_error) == ("done", 1, None) and done.finished_at == now
    assert limited.status == "queued" and limited.run_at == now + timedelta(seconds=30) and limited.attempts == 1
    assert parked.status == "parked" and parked.last_error == "channel_not_found" and parked.finished_at == now
    # Waiting for a slot is not an attempt: given back, and the slot kept for the next run.
    assert deferred.status == "queued" and deferred.attempts == 0
    assert deferred.reservation == "chat.postMessage:C1@123.000" and deferred.run_at == now + timedelta(seconds=5)
    assert failed.status == "queued" and "boom" in failed.last_error and failed.finished_at is None
    assert timedelta(seconds=5) <= failed.run_at - now <= timedelta(seconds=10)  # the kind's back-off
    assert all(job.locked_until is None for job in (done, limited, parked, deferred, failed))
    async with container.db.read() as session:
        outcomes = list((await session.scalars(select(JobAttempt.outcome).order_by(JobAttempt.id))).all())
    assert sorted(outcomes) == sorted(["done", "retry", "parked", "deferred", "retry"])


async def test_a_batched_kind_is_topped_up_and_other_kinds_keep_their_order(container, clock):
    ran: list[str] = []

    async def single(ctx, payload):
        ran.append(f"{payload['kind']}{payload['n']}")

    async def batch(items):
        ran.extend(f"b{item.payload['n']}" for item in items)
        return [None] * len(items)

    container.registry.register("test.single", single)
    container.registry.register("test.batched", single)
    container.registry.register_batch("test.batched", batch, size=30)
    for n in range(20):  # due first: a full round of them, and more
        await container.db.write(lambda s, n=n: enqueue(s, "test.batched", {"kind": "b", "n": n}))
    clock.advance(seconds=1)
    for n in range(3):
        await container.db.write(lambda s, n=n: enqueue(s, "test.single", {"kind": "s", "n": n}))
    assert await container.worker.run_once() == 20  # the round's 16, topped up with the other four
    assert sorted(ran) == sorted(f"b{n}" for n in range(20))
    assert await container.worker.run_once() == 3
    assert sorted(ran[20:]) == ["s0", "s1", "s2"]  # the next round, as before
