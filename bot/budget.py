"""Slack's rate limits, kept by us before Slack has to: a budget per method (and per channel where
Slack counts per channel), shared by every process on PostgreSQL.

Each budget is a generic cell rate algorithm: a rate and a burst. A call takes the next slot; when
the slot is now (or within `INLINE_WAIT`), the call waits for it and goes; when it is further away,
an outbox job is deferred to its slot (`Deferred`: the attempt is not counted) and holds the slot
as a reservation, so a deep queue drains in order at the budget's pace instead of every waiting job
retrying each second. A 429 that gets through anyway (another app on the same token, Slack's own
limits moving) closes the budget for Retry-After seconds, is logged once per burst, and defers the
job again — never a failed attempt.

On SQLite one process does all the work, so the budget lives in memory; on PostgreSQL it is the
`rate_budgets` table, one row per budget, updated under a row lock in a short transaction.
"""

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.outbox.models import RateBudget
from api.outbox.registry import Deferred, current_reservation

log = logging.getLogger(__name__)

# A job waits in place for a slot this close; further away it is deferred to it.
INLINE_WAIT = 2.0
# A listener (a person waits on it) never waits longer than this; past it the call goes and Slack's
# own answer decides.
INTERACTIVE_WAIT = 2.0
# Up to this fraction of an interval is added to a rescheduled job's slot.
JITTER = 0.25


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int
    per_channel: bool = False

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


def per_minute(calls: int, burst: int) -> Rate:
    return Rate(calls / 60.0, burst)


# Slack's published tiers (https://api.slack.com/apis/rate-limits): Tier 2 20+/min, Tier 3 50+/min,
# Tier 4 100+/min; chat.postMessage is "special": about one message per second per channel, short
# bursts tolerated. The bursts are ours, kept small so a burst never meets Slack's own limit.
TIER_2, TIER_3, TIER_4 = per_minute(20, 3), per_minute(50, 5), per_minute(100, 10)
POST_MESSAGE = Rate(1.0, 3, per_channel=True)
RATES: dict[str, Rate] = {
    "chat.postMessage": POST_MESSAGE,
    "chat.update": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.getPermalink": TIER_4,
    "conversations.history": TIER_3,
    "conversations.info": TIER_3,
    "usergroups.users.list": TIER_2,
    "users.info": TIER_4,
    "views.open": TIER_4,
    "views.update": TIER_4,
    "views.push": TIER_4,
    "views.publish": TIER_4,
    "auth.test": TIER_4,
}
DEFAULT_RATE = TIER_3


def rate_of(method: str) -> Rate:
    return RATES.get(method, DEFAULT_RATE)


def budget_key(method: str, channel: str | None) -> str:
    rate = rate_of(method)
    return f"{method}:{channel}" if rate.per_channel and channel else method


def take(tat: float | None, now: float, rate: Rate) -> tuple[float, float]:
    """One slot from a budget whose theoretical arrival time is `tat`: (the slot, the new tat)."""
    slot = now if tat is None else max(now, tat - rate.tolerance)
    return slot, max(tat or now, slot) + rate.interval


def closed_until(tat: float | None, now: float, seconds: float, rate: Rate) -> float:
    """The tat after Slack said "not for `seconds`": the next slot is no sooner than then."""
    return max(tat or now, now + seconds + rate.tolerance)


def starts_pause(before: float | None, after: float, rate: Rate) -> bool:
    """Whether closing moved the budget by more than one slot: the first 429 of a burst. The others,
    answered a moment later (on another replica too), only nudge the end of the same pause."""
    return before is None or after > before + rate.interval


class BudgetStore(ABC):
    """Where the budgets' state lives. Times are seconds since the epoch, by the wall clock:
    Slack's limits are in real seconds, whatever clock the rest of the service is given."""

    @abstractmethod
    async def reserve(self, key: str, rate: Rate, now: float) -> float:
        """Take the next slot of `key`'s budget; returns when it is."""

    @abstractmethod
    async def close(self, key: str, rate: Rate, now: float, seconds: float) -> bool:
        """Close the budget for `seconds`; True when this moved it (the first 429 of a burst)."""


class MemoryBudgets(BudgetStore):
    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def reserve(self, key: str, rate: Rate, now: float) -> float:
        slot, self._tat[key] = take(self._tat.get(key), now, rate)
        return slot

    async def close(self, key: str, rate: Rate, now: float, seconds: float) -> bool:
        before = self._tat.get(key)
        self._tat[key] = closed_until(before, now, seconds, rate)
        return starts_pause(before, self._tat[key], rate)


class SharedBudgets(BudgetStore):
    """The `rate_budgets` table: every replica and worker draws from the same budgets."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _locked(self, session: AsyncSession, key: str, now: float) -> float | None:
        stamp = datetime.fromtimestamp(now, UTC)
        await session.execute(pg_insert(RateBudget).values(key=key, tat=stamp).on_conflict_do_nothing())
        tat = await session.scalar(select(RateBudget.tat).where(RateBudget.key == key).with_for_update())
        return tat.timestamp() if tat is not None else None

    async def _store(self, session: AsyncSession, key: str, tat: float) -> None:
        stamp = datetime.fromtimestamp(tat, UTC)
        await session.execute(update(RateBudget).where(RateBudget.key == key).values(tat=stamp)
                              .execution_options(synchronize_session=False))

    async def reserve(self, key: str, rate: Rate, now: float) -> float:
        async def run(session: AsyncSession) -> float:
            slot, tat = take(await self._locked(session, key, now), now, rate)
            await self._store(session, key, tat)
            return slot

        return await self.db.write(run)

    async def close(self, key: str, rate: Rate, now: float, seconds: float) -> bool:
        async def run(session: AsyncSession) -> bool:
            before = await self._locked(session, key, now)
            after = closed_until(before, now, seconds, rate)
            await self._store(session, key, after)
            return starts_pause(before, after, rate)

        return await self.db.write(run)


def store_for(db: Database) -> BudgetStore:
    return MemoryBudgets() if db.is_sqlite else SharedBudgets(db)


class SlackBudget:
    """The one budget every Web API client of a process draws from."""

    def __init__(self, store: BudgetStore, *, wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.wall = wall
        self.rate_limited = 0  # 429s seen, for the benchmark and the logs

    async def acquire(self, method: str, channel: str | None, *, defer: bool) -> None:
        """Wait for this call's slot; with `defer` (an outbox job), a far slot defers the job to it."""
        key, rate, now = budget_key(method, channel), rate_of(method), self.wall()
        if self._held(key):
            return  # the job was deferred to this slot and the worker ran it when it came: go
        slot = await self.store.reserve(key, rate, now)
        wait = slot - now
        if defer and wait > INLINE_WAIT:
            raise Deferred(f"Slack's budget for {key}: the next slot is in {wait:.1f} s",
                           delay=wait, reservation=f"{key}@{slot:.3f}")
        if wait > 0:
            await asyncio.sleep(min(wait, INLINE_WAIT if defer else INTERACTIVE_WAIT))

    async def refused(self, method: str, channel: str | None, retry_after: float, *, defer: bool) -> None:
        """Slack answered 429: close the budget, and defer a job to a slot after the pause."""
        key, rate, now = budget_key(method, channel), rate_of(method), self.wall()
        self.rate_limited += 1
        if await self.store.close(key, rate, now, retry_after):
            log.warning("Slack rate-limited %s: pausing it for %.0f s (calls waiting meanwhile are rescheduled)",
                        key, retry_after)
        else:
            log.debug("Slack rate-limited %s again within the same pause", key)
        if defer:
            slot = await self.store.reserve(key, rate, self.wall())
            # Each waiting job has its own slot; a little jitter keeps processes from meeting on the edge.
            delay = max(0.0, slot - now) + random.uniform(0, JITTER * rate.interval)
            raise Deferred(f"Slack answered ratelimited for {key}; retrying in {delay:.1f} s", delay=delay,
                           reservation=f"{key}@{slot:.3f}")

    @staticmethod
    def _held(key: str) -> bool:
        """Whether this job holds a slot of this budget, promised when it was deferred (used once).
        The worker runs a deferred job when its slot comes, so holding one means it is time."""
        reservation = current_reservation.get()
        if not reservation or reservation.rpartition("@")[0] != key:
            return False
        current_reservation.set(None)
        return True
