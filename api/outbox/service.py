"""Enqueue jobs inside the caller's transaction."""

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import JOBS_ENQUEUED, utcnow
from api.ids import new_id
from api.outbox.models import Job

DEFAULT_MAX_ATTEMPTS = 8


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
    key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> None:
    """Add a job; with `key`, a job already enqueued under that key makes this a no-op."""
    now = session.info.get("clock", utcnow)()
    values = {"id": new_id("job"), "kind": kind, "payload": payload, "key": key, "status": "queued", "attempts": 0,
              "max_attempts": max_attempts, "run_at": run_at or now, "created_at": now}
    if key is None:
        # A plain add: flushed with the rest of the transaction, in one INSERT with its neighbours.
        session.add(Job(**values))
    else:
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        await session.execute(insert(Job).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    if values["run_at"] <= now:
        session.info[JOBS_ENQUEUED] = True  # due now: wake this process's worker after the commit
