"""What the Connections and health pages read and change: Connections, and the outbox's parked jobs.

Requeueing is `api.outbox.service.requeue_parked`, the same call as `cheqpoint jobs requeue ID`.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.outbox.kinds import OPEN_STATUSES, JobStatus
from api.outbox.models import Job

PARKED_SHOWN = 100


@dataclass(frozen=True)
class OutboxHealth:
    depth: dict[JobStatus, int]  # status → jobs (queued, running, parked)
    by_kind: list[tuple[str, str, int]]  # (kind, status, jobs) for work not done
    parked: list[Job]
    oldest_due: datetime | None


async def outbox_health(session: AsyncSession) -> OutboxHealth:
    rows = (await session.execute(select(Job.kind, Job.status, func.count()).where(Job.status.in_(OPEN_STATUSES))
                                  .group_by(Job.kind, Job.status).order_by(Job.kind, Job.status))).all()
    depth: Counter[str] = Counter()
    for _, status, count in rows:
        depth[status] += count
    parked = (await session.scalars(select(Job).where(Job.status == JobStatus.PARKED).order_by(Job.run_at, Job.id)
                                    .limit(PARKED_SHOWN))).all()
    oldest = await session.scalar(select(func.min(Job.run_at)).where(Job.status == JobStatus.QUEUED))
    return OutboxHealth({s: depth.get(s, 0) for s in OPEN_STATUSES}, [(k, s, c) for k, s, c in rows], list(parked),
                        oldest)
