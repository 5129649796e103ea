"""What the Connections and health pages read and change: Connections, and the outbox's parked jobs.

Requeueing is the same operation as `cheqpoint jobs requeue ID`: a parked job runs again now with a
fresh budget of attempts, its history kept.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, NotFound
from api.outbox.models import Job

PARKED_SHOWN = 100


@dataclass(frozen=True)
class OutboxHealth:
    depth: dict[str, int]  # status → jobs (queued, running, parked)
    by_kind: list[tuple[str, str, int]]  # (kind, status, jobs) for work not done
    parked: list[Job]
    oldest_due: datetime | None


async def outbox_health(session: AsyncSession) -> OutboxHealth:
    waiting = ("queued", "running", "parked")
    rows = (await session.execute(select(Job.kind, Job.status, func.count()).where(Job.status.in_(waiting))
                                  .group_by(Job.kind, Job.status).order_by(Job.kind, Job.status))).all()
    depth: Counter[str] = Counter()
    for _, status, count in rows:
        depth[status] += count
    parked = (await session.scalars(select(Job).where(Job.status == "parked").order_by(Job.run_at, Job.id)
                                    .limit(PARKED_SHOWN))).all()
    oldest = await session.scalar(select(func.min(Job.run_at)).where(Job.status == "queued"))
    return OutboxHealth({s: depth.get(s, 0) for s in waiting}, [(k, s, c) for k, s, c in rows], list(parked),
                        oldest)


async def requeue_parked(session: AsyncSession, job_id: str, now: datetime) -> Job:
    job = await session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if job.status != "parked":
        raise Conflict(f"job {job_id} is {job.status}, not parked: only parked jobs are requeued")
    await session.execute(update(Job).where(Job.id == job_id, Job.status == "parked")
                          .values(status="queued", run_at=now, locked_until=None, finished_at=None,
                                  max_attempts=Job.attempts + Job.max_attempts)
                          .execution_options(synchronize_session=False))
    return job
