"""Enqueue jobs inside the caller's transaction."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import JOBS_ENQUEUED, utcnow
from api.deferred import defer_insert
from api.errors import Conflict, NotFound
from api.ids import new_id
from api.outbox.kinds import JobStatus
from api.outbox.models import Job

DEFAULT_MAX_ATTEMPTS = 8
JOB_TABLE = Job.__table__
# The columns a new job leaves empty: named, because rows inserted together must name the same columns.
_UNSET = {"locked_until": None, "last_error": None, "finished_at": None, "reservation": None}


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
    key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    fresh: bool = False,
) -> None:
    """Add a job; with `key`, a job already enqueued under that key makes this a no-op.

    `fresh`: the key names something this transaction created (a new approval's id), so no job can
    hold it yet and the job is written with the transaction's other rows instead of a statement of
    its own (a round trip to SQLite's thread, two per request sent to Slack for review)."""
    now = session.info.get("clock", utcnow)()
    values = {"id": new_id("job"), "kind": kind, "payload": payload, "key": key, "status": JobStatus.QUEUED,
              "attempts": 0, "max_attempts": max_attempts, "run_at": run_at or now, "created_at": now}
    if key is None or fresh:
        # Written with the transaction's other queued rows: one INSERT … executemany for all of them.
        defer_insert(session, JOB_TABLE, {**values, **_UNSET})
    else:
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        await session.execute(insert(Job).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    if values["run_at"] <= now:
        session.info[JOBS_ENQUEUED] = True  # due now: wake this process's worker after the commit


async def requeue_parked(session: AsyncSession, now: datetime, job_id: str | None = None) -> int:
    """Run one parked job (or, without `job_id`, every parked job) again now, with a fresh budget of
    attempts; its history is kept. Returns how many were requeued."""
    if job_id is not None:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job.status != JobStatus.PARKED:
            raise Conflict(f"job {job_id} is {job.status}, not parked: only parked jobs are requeued")
    parked = Job.status == JobStatus.PARKED
    where = (Job.id == job_id, parked) if job_id is not None else (parked,)
    count = await session.scalar(select(func.count()).select_from(Job).where(*where))
    await session.execute(update(Job).where(*where)
                          .values(status=JobStatus.QUEUED, run_at=now, locked_until=None, finished_at=None,
                                  max_attempts=Job.attempts + Job.max_attempts)
                          .execution_options(synchronize_session=False))
    return count or 0
