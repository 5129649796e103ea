"""Delete counter rows no window can read any more.

A read at `now` names buckets that start at or after `now - 24h` (`read.py`), so a row whose bucket
started more than `KEEP` ago is never read again; the extra hour covers replicas whose clocks
disagree a little. Without this the table grew by ~1,500 rows a day per active Connection and
customer, forever.

The job is an outbox job (kind `usage.prune`), so it runs on whichever worker claims it and survives
restarts. It is enqueued by the counters' own commit hook (`track.py`), at most once an hour per
database connection and, through its dedupe key, once an hour in all: rows are only added by that
hook, so a database that writes no counters has nothing new to prune. It deletes in batches of
`BATCH` rows, each its own transaction, so on SQLite it never holds the one writer for long.
"""

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from api.ids import new_id
from api.outbox.kinds import JobStatus
from api.outbox.models import Job
from api.usage.keys import WINDOW
from api.usage.models import UsageTotal

if TYPE_CHECKING:
    from api.outbox.registry import JobContext

log = logging.getLogger(__name__)

KIND = "usage.prune"
KEEP = WINDOW + timedelta(hours=1)
BATCH = 1000
DELAY = timedelta(hours=1)  # from the hour's first counter write to its prune job
T = UsageTotal.__table__
_KEY = (T.c.scope, T.c.subject, T.c.action, T.c.span, T.c.starts_at, T.c.currency)
SCHEDULED = "cheqpoint.usage_prune_hour"  # in the DBAPI connection's info: the last hour enqueued from it


def cutoff(now: datetime) -> datetime:
    return now - KEEP


async def delete_batch(session: AsyncSession, before: datetime, limit: int = BATCH) -> int:
    """Delete up to `limit` rows whose bucket started before `before`; how many went."""
    oldest = select(*_KEY).where(T.c.starts_at < before).limit(limit)
    result = await session.execute(delete(T).where(tuple_(*_KEY).in_(oldest)))
    return int(result.rowcount or 0)


async def prune(ctx: "JobContext", payload: dict[str, Any]) -> None:
    """The job: delete every row older than `KEEP`, a bounded batch per transaction."""
    before, total = cutoff(ctx.clock()), 0
    while True:
        deleted = await ctx.db.write(lambda session: delete_batch(session, before))
        total += deleted
        if deleted < BATCH:
            break
    if total:
        log.info("deleted %d velocity counter rows older than %s", total, before.isoformat())


def schedule(connection: Connection, now: datetime) -> None:
    """Enqueue this hour's prune job, once an hour per database connection (called at commit).

    It is due an hour later, not at once: the rows this hour writes stay readable for a day, so there
    is nothing to gain by pruning now, and a job due the moment a request is stored would run beside
    every first request of an hour (and be counted by whoever drains the queue right after)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    if connection.info.get(SCHEDULED) == hour:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    values = {"id": new_id("job"), "kind": KIND, "payload": {}, "key": f"{KIND}:{hour.isoformat()}",
              "status": JobStatus.QUEUED, "attempts": 0, "max_attempts": 8, "run_at": now + DELAY,
              "created_at": now}
    connection.execute(insert(Job).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    # Remembered at once: if this transaction rolls back, the next hour's job deletes what this one would have.
    connection.info[SCHEDULED] = hour
