"""Concurrent holds (`timeoutMs`, `waitMs`, `maxWaitMs`) per Connection, counted across replicas."""

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.errors import TooManyRequests
from api.ids import new_id
from api.limits.locks import serialize
from api.limits.models import Hold

# A hold row outlives its hold by this much before it stops counting, should its process die.
MARGIN = timedelta(seconds=5)


class HoldSlots:
    def __init__(self, db: Database, limit: int, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.limit = limit  # 0: no limit
        self.clock = clock

    @contextlib.asynccontextmanager
    async def claim(self, connection_id: str, seconds: float) -> AsyncIterator[None]:
        """Hold one of the Connection's slots for up to `seconds`, or raise TooManyRequests."""
        if self.limit <= 0 or seconds <= 0:
            yield
            return
        now = self.clock()
        hold = Hold(id=new_id("hld"), connection_id=connection_id, started_at=now,
                    expires_at=now + timedelta(seconds=seconds) + MARGIN)

        async def take(session: AsyncSession) -> None:
            await serialize(session, ("holds", connection_id))
            active, first_end = (await session.execute(
                select(func.count(), func.min(Hold.expires_at))
                .where(Hold.connection_id == connection_id, Hold.expires_at > now))).one()
            if active >= self.limit:
                wait = (first_end - now - MARGIN).total_seconds() if first_end else 1
                raise TooManyRequests(f"this Connection is limited to {self.limit} requests held open at once",
                                      retry_after=max(1, math.ceil(wait)))
            session.add(hold)

        await self.db.write(take)
        try:
            yield
        finally:
            # Shielded: a client that hangs up cancels its request, but its slot must still be given back.
            release = asyncio.ensure_future(
                self.db.write(lambda session: self._release(session, hold.id, connection_id, now)))
            await asyncio.shield(release)

    @staticmethod
    async def _release(session: AsyncSession, hold_id: str, connection_id: str, now: datetime) -> None:
        # Also sweep this Connection's rows left behind by processes that died mid-hold.
        await session.execute(delete(Hold).where(
            (Hold.id == hold_id) | ((Hold.connection_id == connection_id) & (Hold.expires_at <= now))))
