"""Keeping the limit checks out of SQLite's one writer when a Connection is far from its limits.

On SQLite every write of the process runs in one writer task, so a query there delays every other
request. Before a create reaches the writer, its Connection's counts are read on a reader; in the
writer the exact check (`check_intake`) runs only when those counts, plus every create of that
Connection that may have committed since or is still in flight in this process, could reach a
limit. The estimate only errs high (more exact checks, never fewer), so the limits stay exact.
This relies on SQLite's one serving process; on PostgreSQL (replicas) the exact check always runs.
"""

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.limits.intake import IntakeLimits, applicable, check_intake, read_counts


@dataclass
class Ticket:
    gate: "IntakeGate"
    connection_id: str
    now: datetime
    counts: dict[str, int] | None  # requests, lookups, pending as read before the writer
    finished_before: int

    async def check(self, session: AsyncSession, *, lookup: bool, review: bool) -> None:
        limits = applicable(self.gate.limits, lookup=lookup, review=review)
        if not limits or (self.counts is not None and self.far_from(limits)):
            return
        await check_intake(session, self.gate.limits, self.connection_id, self.now, lookup=lookup, review=review)

    def far_from(self, limits: dict[str, int]) -> bool:
        assert self.counts is not None
        gate = self.gate
        # Others of this Connection that finished since the read, or are in flight besides this one.
        unseen = gate.finished[self.connection_id] - self.finished_before + gate.in_flight[self.connection_id] - 1
        return all(self.counts[what] + unseen + 1 <= limit for what, limit in limits.items())


class IntakeGate:
    def __init__(self, db: Database, limits: IntakeLimits) -> None:
        self.db = db
        self.limits = limits
        self.in_flight: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()
        self.readings: dict[str, tuple[dict[str, int], int]] = {}  # counts read, `finished` just before

    @contextlib.asynccontextmanager
    async def admit(self, connection_id: str, now: datetime) -> AsyncIterator[Ticket]:
        """For the duration of one create: a ticket whose `check` runs inside the write."""
        self.in_flight[connection_id] += 1
        try:
            yield await self._ticket(connection_id, now)
        finally:
            self.in_flight[connection_id] -= 1
            if not self.in_flight[connection_id]:
                del self.in_flight[connection_id]
            self.finished[connection_id] += 1  # counted even when it failed: the estimate may only err high

    async def _ticket(self, connection_id: str, now: datetime) -> Ticket:
        limits = applicable(self.limits, lookup=True, review=True)
        if not self.db.is_sqlite or not limits:
            return Ticket(self, connection_id, now, None, 0)
        # Counts only fall as time passes (the window slides, decisions end pending requests) and only
        # creates, all counted in `finished`/`in_flight`, raise them: an older reading stays a safe
        # upper bound. Read again only when it no longer shows the Connection far from its limits.
        known = self.readings.get(connection_id)
        if known is not None:
            ticket = Ticket(self, connection_id, now, *known)
            if ticket.far_from(limits):
                return ticket
        finished_before = self.finished[connection_id]
        async with self.db.read() as session:
            counts = await read_counts(session, limits, connection_id, now)
        self.readings[connection_id] = (counts, finished_before)
        return Ticket(self, connection_id, now, counts, finished_before)
