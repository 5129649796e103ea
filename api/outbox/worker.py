"""The worker: claims due jobs, runs them, records every attempt, retries with back-off, parks.

Claiming is one UPDATE … RETURNING. On PostgreSQL the inner SELECT takes `FOR UPDATE SKIP LOCKED`, so
several workers share the queue without taking the same job; on SQLite the database's single
writer makes the same statement atomic. A claimed job holds a short lease (15 s), renewed by a
heartbeat while the job runs; a worker that dies mid-job leaves it `running` until the lease
lapses, seconds later, and then another worker takes it again — which is why every handler's
effect must be idempotent (Stripe keys, stable webhook ids, the Slack message found by its metadata).

A job that waits for a rate limit raises `Deferred`: it goes back to the queue for the slot it was
promised, and the attempt is not counted (waiting for Slack's budget is not failing).

A worker told to stop (`shutdown()`, on SIGTERM) does not make its jobs wait out the lease: it
cancels the jobs it is running and hands them back at once (queued, due now, the interrupted
attempt not counted), so another worker takes them straight away.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.logs import bound
from api.outbox.kinds import AttemptOutcome, JobStatus
from api.outbox.models import Job, JobAttempt
from api.outbox.registry import (
    BatchItem,
    Deferred,
    JobContext,
    JobRegistry,
    Park,
    Registration,
    Retry,
    current_reservation,
)

log = logging.getLogger(__name__)


Outcome = tuple[AttemptOutcome, str | None, float | None, str | None]  # outcome, error, delay, reservation


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    started_at: datetime
    reservation: str | None = None


class Worker:
    def __init__(
        self,
        context: JobContext,
        registry: JobRegistry,
        *,
        poll_seconds: float = 0.5,
        batch: int = 16,
        lease_seconds: float = 15.0,
        clock: Callable[[], datetime],
    ) -> None:
        self.context = context
        self.registry = registry
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: dict[str, asyncio.Task[None]] = {}  # claimed jobs in progress, by job id
        # Called after each finished attempt with (kind, outcome, seconds): the metrics subscribe.
        self.on_attempt: Callable[[str, str, float], None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Work until stopped; a failure of the loop itself is logged and the loop goes on."""
        while not self._stopping:
            try:
                ran = await self.run_once()
            except Exception:
                log.exception("worker loop failed; retrying")
                ran = 0
            if ran == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def shutdown(self) -> list[str]:
        """Stop claiming, cancel the jobs in progress and return them to the queue; their ids."""
        self.stop()
        tasks = dict(self._running)
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        if tasks:
            await self.context.db.write(lambda session: self._release(session, list(tasks)))
            log.info("returned %d claimed job(s) to the queue: %s", len(tasks), ", ".join(tasks))
        return list(tasks)

    async def _release(self, session: AsyncSession, job_ids: list[str]) -> None:
        # Only jobs still marked running: one that finished just before the cancel keeps its outcome.
        await session.execute(
            update(Job).where(Job.id.in_(job_ids), Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.QUEUED, locked_until=None, run_at=self.clock(), attempts=Job.attempts - 1)
            .execution_options(synchronize_session=False))

    async def run_once(self) -> int:
        """Claim the jobs due now and run them concurrently; return how many ran."""
        if self._stopping:
            return 0
        jobs = await self.context.db.write(self._claim)
        if jobs and self._stopping:  # told to stop while claiming: hand these back untouched
            await self.context.db.write(lambda session: self._release(session, [job.id for job in jobs]))
            return 0
        if jobs:
            tasks = []
            for group in self._groups(jobs):
                kind = self.registry.get(group[0].kind)
                if len(group) > 1 and kind is not None and kind.batch is not None:
                    task = asyncio.create_task(self._run_batch(kind, group), name=f"jobs-{group[0].kind}")
                else:
                    task = asyncio.create_task(self._run_job(group[0]), name=f"job-{group[0].id}")
                tasks.append(task)
                self._running.update({job.id: task for job in group})
            heartbeat = asyncio.create_task(self._heartbeat(), name="job-heartbeat")
            try:
                results = await asyncio.gather(*tasks, return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception):  # a failure to record the outcome, not the job's own
                        log.error("recording a job's outcome failed", exc_info=result)
            finally:
                heartbeat.cancel()
                for job in jobs:
                    self._running.pop(job.id, None)
        return len(jobs)

    def _groups(self, jobs: list[ClaimedJob]) -> list[list[ClaimedJob]]:
        """The claimed jobs as they will run: those of a kind with a batch handler together, every
        other job alone (as before: each its own task, all at once)."""
        batches: dict[str, list[ClaimedJob]] = {}
        groups: list[list[ClaimedJob]] = []
        for job in jobs:
            kind = self.registry.get(job.kind)
            if kind is not None and kind.batch is not None:
                if job.kind not in batches:
                    batches[job.kind] = []
                    groups.append(batches[job.kind])
                batches[job.kind].append(job)
            else:
                groups.append([job])
        return groups

    async def _heartbeat(self) -> None:
        """Renew the leases of the jobs running here, a few times per lease: a live worker keeps its
        jobs however long they take, a dead one loses them within one lease."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            ids = list(self._running)
            if not ids:
                continue
            try:
                await self.context.db.write(lambda session, ids=ids: self._renew(session, ids))
            except Exception as exc:  # the next beat tries again; the lease still has two thirds left
                log.warning("renewing the leases of %d job(s) failed: %r", len(ids), exc)

    async def _renew(self, session: AsyncSession, job_ids: list[str]) -> None:
        await session.execute(update(Job).where(Job.id.in_(job_ids), Job.status == JobStatus.RUNNING)
                              .values(locked_until=self.clock() + self.lease)
                              .execution_options(synchronize_session=False))

    async def drain(self, *, max_rounds: int = 50) -> int:
        """Run until nothing is due (tests and the CLI use this)."""
        total = 0
        for _ in range(max_rounds):
            ran = await self.run_once()
            total += ran
            if ran == 0:
                break
        return total

    async def _claim(self, session: AsyncSession) -> list[ClaimedJob]:
        jobs = await self._claim_due(session, self.batch)
        if len(jobs) < self.batch:
            return jobs  # nothing else is due
        # A kind run in batches is topped up to its batch size: the more of its jobs share one round,
        # the less each costs (a round's reads, store and finish are one statement each). Jobs of other
        # kinds keep their order: they were past this round's limit anyway.
        claimed: dict[str, int] = {}
        for job in jobs:
            claimed[job.kind] = claimed.get(job.kind, 0) + 1
        for kind, count in claimed.items():
            registration = self.registry.get(kind)
            if registration is not None and registration.batch is not None and registration.batch_size > count:
                jobs += await self._claim_due(session, registration.batch_size - count, kind=kind)
        return jobs

    async def _claim_due(self, session: AsyncSession, limit: int, *, kind: str | None = None) -> list[ClaimedJob]:
        now = self.clock()
        due = or_(and_(Job.status == JobStatus.QUEUED, Job.run_at <= now),
                  and_(Job.status == JobStatus.RUNNING, Job.locked_until < now))
        candidates = select(Job.id).where(due).order_by(Job.run_at, Job.id).limit(limit)
        if kind is not None:
            candidates = candidates.where(Job.kind == kind)
        if session.bind.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(Job)
            .where(Job.id.in_(candidates.scalar_subquery()))
            .values(status=JobStatus.RUNNING, locked_until=now + self.lease, attempts=Job.attempts + 1)
            .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.reservation)
            .execution_options(synchronize_session=False)
        )
        rows = (await session.execute(statement)).all()
        return [ClaimedJob(r.id, r.kind, r.payload, r.attempts, r.max_attempts, now, r.reservation) for r in rows]

    async def _run_job(self, job: ClaimedJob) -> None:
        approval = job.payload.get("approval_id") if isinstance(job.payload, dict) else None
        with bound(approval_id=approval if isinstance(approval, str) else None):
            await self._run_job_in_context(job)

    async def _run_job_in_context(self, job: ClaimedJob) -> None:
        started = asyncio.get_running_loop().time()
        kind = self.registry.get(job.kind)
        context = replace(self.context, attempt=job.attempt, max_attempts=job.max_attempts, job_id=job.id)
        error: BaseException | None = None
        token = current_reservation.set(job.reservation)
        try:
            if kind is None:
                raise Park(f"no handler for job kind {job.kind!r}")
            await kind.handler(context, job.payload)
        except Exception as exc:
            error = exc
        finally:
            current_reservation.reset(token)
        result = self._outcome(job, kind, error)
        self._attempted(job, result, started)
        await self.context.db.write(lambda session: self._finish(session, job, *result))

    async def _run_batch(self, kind: Registration, jobs: list[ClaimedJob]) -> None:
        """Several due jobs of one kind through its batch handler; their outcomes in one statement."""
        started = asyncio.get_running_loop().time()
        items = [BatchItem(replace(self.context, attempt=job.attempt, max_attempts=job.max_attempts, job_id=job.id),
                           job.payload, job.reservation) for job in jobs]
        assert kind.batch is not None
        try:
            errors = await kind.batch(items)
            if len(errors) != len(jobs):
                raise RuntimeError(f"the batch handler answered {len(errors)} outcomes for {len(jobs)} jobs")
        except Exception as exc:  # the batch as a whole failed: each job retries (handlers are idempotent)
            errors = [exc] * len(jobs)
        results = [self._outcome(job, kind, error) for job, error in zip(jobs, errors, strict=True)]
        for job, result in zip(jobs, results, strict=True):
            self._attempted(job, result, started)
        await self.context.db.write(lambda session: self._finish_many(session, jobs, results))

    def _outcome(self, job: ClaimedJob, kind: Registration | None, exc: BaseException | None) -> Outcome:
        """What the attempt's exception (None: done) means for the job: outcome, error, delay, reservation."""
        outcome, error, delay, reservation = AttemptOutcome.DONE, None, None, None
        if isinstance(exc, Park):
            outcome, error = AttemptOutcome.PARKED, str(exc)
        elif isinstance(exc, Deferred):
            outcome, error, delay, reservation = AttemptOutcome.DEFERRED, str(exc), exc.delay, exc.reservation
        elif isinstance(exc, Retry):
            outcome, error, delay = AttemptOutcome.RETRY, str(exc), exc.delay
        elif exc is not None:
            log.warning("job %s (%s) attempt %s failed: %r", job.id, job.kind, job.attempt, exc)
            outcome, error = AttemptOutcome.RETRY, f"{type(exc).__name__}: {exc}"
        if outcome == AttemptOutcome.RETRY and job.attempt >= job.max_attempts:
            outcome = AttemptOutcome.PARKED
            error = f"gave up after {job.attempt} attempts: {error}"
        if outcome == AttemptOutcome.PARKED:
            log.error("job %s (%s) parked: %s", job.id, job.kind, error)
        if outcome == AttemptOutcome.RETRY and delay is None:
            assert kind is not None
            # Full jitter on the upper half, so a burst of failures does not retry in lockstep.
            delay = kind.backoff.delay(job.attempt) * random.uniform(0.5, 1.0)
        return outcome, error, delay, reservation

    def _attempted(self, job: ClaimedJob, result: Outcome, started: float) -> None:
        if self.on_attempt is not None:
            self.on_attempt(job.kind, result[0], asyncio.get_running_loop().time() - started)

    async def _finish(self, session: AsyncSession, job: ClaimedJob, outcome: AttemptOutcome, error: str | None,
                      delay: float | None, reservation: str | None = None) -> None:
        now = self.clock()
        session.add(JobAttempt(job_id=job.id, attempt=job.attempt, started_at=job.started_at, finished_at=now,
                               outcome=outcome, error=error))
        values: dict[str, Any] = {"last_error": error, "locked_until": None, "reservation": reservation}
        if outcome == AttemptOutcome.DEFERRED:  # waiting for a slot is not an attempt: give it back
            values.update(status=JobStatus.QUEUED, run_at=now + timedelta(seconds=delay or 0),
                          attempts=Job.attempts - 1)
        elif outcome == AttemptOutcome.RETRY:
            values.update(status=JobStatus.QUEUED, run_at=now + timedelta(seconds=delay or 0))
        else:
            final = JobStatus.DONE if outcome == AttemptOutcome.DONE else JobStatus.PARKED
            values.update(status=final, finished_at=now)
        await session.execute(update(Job).where(Job.id == job.id).values(**values)
                              .execution_options(synchronize_session=False))

    async def _finish_many(self, session: AsyncSession, jobs: list[ClaimedJob], results: list[Outcome]) -> None:
        """`_finish` for a batch: the attempts in one INSERT and the jobs in one UPDATE, each executed
        once for all rows (a statement per job was a round trip to the database thread per job)."""
        now = self.clock()
        await session.execute(insert(JobAttempt.__table__), [
            {"job_id": job.id, "attempt": job.attempt, "started_at": job.started_at, "finished_at": now,
             "outcome": outcome, "error": error} for job, (outcome, error, _, _) in zip(jobs, results, strict=True)])
        rows = []
        for job, (outcome, error, delay, reservation) in zip(jobs, results, strict=True):
            row = {"job_id": job.id, "new_status": JobStatus.QUEUED, "new_run_at": None, "new_finished_at": None,
                   "give_back": 0, "new_error": error, "new_reservation": reservation}
            if outcome in (AttemptOutcome.DEFERRED, AttemptOutcome.RETRY):
                row["new_run_at"] = now + timedelta(seconds=delay or 0)
                row["give_back"] = 1 if outcome == AttemptOutcome.DEFERRED else 0
            else:
                row["new_status"] = JobStatus.DONE if outcome == AttemptOutcome.DONE else JobStatus.PARKED
                row["new_finished_at"] = now
            rows.append(row)
        await session.execute(_FINISH_MANY, rows)


_JOBS = Job.__table__
# One row's `_finish`, as parameters: an executemany runs it for the whole batch. The table's own
# UPDATE (not the ORM's), so a list of parameters is an executemany and the WHERE may name the id.
_FINISH_MANY = (
    update(_JOBS).where(_JOBS.c.id == bindparam("job_id"))
    .values(status=bindparam("new_status", type_=_JOBS.c.status.type), locked_until=None,
            last_error=bindparam("new_error", type_=_JOBS.c.last_error.type),
            reservation=bindparam("new_reservation", type_=_JOBS.c.reservation.type),
            run_at=func.coalesce(bindparam("new_run_at", type_=_JOBS.c.run_at.type), _JOBS.c.run_at),
            finished_at=func.coalesce(bindparam("new_finished_at", type_=_JOBS.c.finished_at.type),
                                      _JOBS.c.finished_at),
            attempts=_JOBS.c.attempts - bindparam("give_back", type_=Integer()))
)
