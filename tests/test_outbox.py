"""The outbox worker: claims, retries with back-off, records attempts, parks, recovers leases."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from api.outbox.models import Job, JobAttempt
from api.outbox.registry import Backoff, Park, Retry
from api.outbox.service import enqueue
from api.outbox.worker import Worker


async def jobs(container) -> list[Job]:
    async with container.db.read() as session:
        return list((await session.scalars(select(Job).order_by(Job.id))).all())


async def attempts(container, job_id: str) -> list[JobAttempt]:
    async with container.db.read() as session:
        return list((await session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id)
                                            .order_by(JobAttempt.attempt))).all())


async def test_failures_retry_with_backoff_then_park(container, clock):
    calls = []

    async def flaky(ctx, payload):
        calls.append(ctx.attempt)
        raise RuntimeError("upstream down")

    container.registry.register("test.flaky", flaky, backoff=Backoff(base=10, cap=100))
    await container.db.write(lambda s: enqueue(s, "test.flaky", {"n": 1}, max_attempts=3))
    await container.worker.drain()
    [job] = await jobs(container)
    assert job.status == "queued" and job.attempts == 1
    # Jittered back-off: between half and all of 10 s.
    assert timedelta(seconds=5) <= job.run_at - clock() <= timedelta(seconds=10)
    for _ in range(2):
        clock.advance(seconds=300)
        await container.worker.drain()
    [job] = await jobs(container)
    assert calls == [1, 2, 3]
    assert job.status == "parked" and "gave up after 3 attempts" in job.last_error
    recorded = await attempts(container, job.id)
    assert [a.outcome for a in recorded] == ["retry", "retry", "parked"]
    assert all("upstream down" in a.error for a in recorded)


async def test_retry_after_and_park_are_honoured(container, clock):
    async def rate_limited(ctx, payload):
        raise Retry("429", delay=30)

    async def broken(ctx, payload):
        raise Park("channel_not_found")

    container.registry.register("test.limited", rate_limited)
    container.registry.register("test.broken", broken)
    await container.db.write(lambda s: enqueue(s, "test.limited", {}))
    await container.db.write(lambda s: enqueue(s, "test.broken", {}))
    await container.worker.drain()
    limited, broken_job = await jobs(container)
    assert limited.run_at - clock() == timedelta(seconds=30)
    assert broken_job.status == "parked" and broken_job.attempts == 1
    assert broken_job.last_error == "channel_not_found"


async def test_dedupe_key_enqueues_once(container):
    for _ in range(3):
        await container.db.write(lambda s: enqueue(s, "test.noop", {}, key="only-once"))
    assert len(await jobs(container)) == 1


async def test_unknown_kind_is_parked_not_lost(container):
    await container.db.write(lambda s: enqueue(s, "test.nobody", {}))
    await container.worker.drain()
    [job] = await jobs(container)
    assert job.status == "parked" and "no handler" in job.last_error


async def test_a_dead_workers_job_is_taken_again_after_its_lease(container, clock):
    runs = []

    async def work(ctx, payload):
        runs.append(ctx.attempt)

    container.registry.register("test.work", work)
    await container.db.write(lambda s: enqueue(s, "test.work", {}))
    # A worker claims the job and dies before finishing it.
    claimed = await container.db.write(container.worker._claim)
    assert len(claimed) == 1
    assert await container.worker.drain() == 0  # leased: nobody else takes it
    clock.advance(seconds=container.worker.lease.total_seconds() + 1)
    await container.worker.drain()
    assert runs == [2]
    [job] = await jobs(container)
    assert job.status == "done"


async def test_enqueue_wakes_the_running_worker(container):
    done = asyncio.Event()

    async def work(ctx, payload):
        done.set()

    container.registry.register("test.wake", work)
    container.worker.poll_seconds = 30  # only a wake-up can make it run in time
    task = asyncio.create_task(container.worker.run())
    try:
        await asyncio.sleep(0.05)
        await container.db.write(lambda s: enqueue(s, "test.wake", {}))
        await asyncio.wait_for(done.wait(), 2)
        assert done.is_set()
    finally:
        container.worker.stop()
        await task


@pytest.mark.postgres
async def test_several_workers_share_the_queue_without_doubles(container, clock):
    seen: list[int] = []

    async def work(ctx, payload):
        await asyncio.sleep(0.01)
        seen.append(payload["n"])

    container.registry.register("test.share", work)

    async def add(session):
        for n in range(60):
            await enqueue(session, "test.share", {"n": n})

    await container.db.write(add)
    workers = [Worker(container.worker.context, container.registry, batch=5, clock=clock) for _ in range(4)]
    for _ in range(20):
        counts = await asyncio.gather(*(w.run_once() for w in workers))
        if sum(counts) == 0:
            break
    assert sorted(seen) == list(range(60))
