"""The intake limits: requests and lookups per minute, and pending approvals, per Connection.

Counted from the approvals table (index `ix_approvals_connection_created`), so every replica sees
the same counts. `check_intake` and `check_pending` run inside the creating transaction, after
`serialize`, so N concurrent requests against a limit of k let exactly k through.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.actions import ACTIONS
from api.approvals.models import Approval
from api.config import Settings
from api.errors import TooManyRequests

MINUTE = timedelta(minutes=1)
LOOKUPS = tuple(name for name, spec in ACTIONS.items() if spec.read_only)


@dataclass(frozen=True)
class IntakeLimits:
    """0 turns a limit off."""

    requests_per_minute: int
    lookups_per_minute: int
    pending: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "IntakeLimits":
        return cls(settings.limit_requests_per_minute, settings.limit_lookups_per_minute, settings.limit_pending)


async def _window(session: AsyncSession, connection_id: str, now: datetime, *,
                  lookups: bool) -> tuple[int, datetime | None]:
    """How many requests in the last minute, and when the oldest of them came in."""
    query = select(func.count(), func.min(Approval.created_at)).where(
        Approval.connection_id == connection_id, Approval.created_at > now - MINUTE)
    if lookups:
        query = query.where(Approval.action.in_(LOOKUPS))
    count, oldest = (await session.execute(query)).one()
    return int(count), oldest


def _retry_after(oldest: datetime | None, now: datetime) -> int:
    if oldest is None:
        return 1
    return max(1, math.ceil((oldest + MINUTE - now).total_seconds()))


async def _check_rate(session: AsyncSession, connection_id: str, now: datetime, limit: int, *,
                      lookups: bool) -> None:
    if limit <= 0:
        return
    count, oldest = await _window(session, connection_id, now, lookups=lookups)
    if count >= limit:
        what = "lookups" if lookups else "requests"
        raise TooManyRequests(f"this Connection is limited to {limit} {what} a minute",
                              retry_after=_retry_after(oldest, now))


async def check_intake(session: AsyncSession, limits: IntakeLimits, connection_id: str, now: datetime, *,
                       lookup: bool) -> None:
    """The per-minute limits; lookups also count against the request limit."""
    await _check_rate(session, connection_id, now, limits.requests_per_minute, lookups=False)
    if lookup:
        await _check_rate(session, connection_id, now, limits.lookups_per_minute, lookups=True)


async def check_before_lookup(session: AsyncSession, limits: IntakeLimits, connection_id: str,
                              now: datetime) -> None:
    """Before a lookup reaches Stripe: the same counts, read without the lock, so a refused lookup
    costs no Stripe call (the locked check at insert still decides)."""
    await check_intake(session, limits, connection_id, now, lookup=True)


async def check_pending(session: AsyncSession, limits: IntakeLimits, connection_id: str) -> None:
    """A request that would wait for people counts against the pending limit; a rule's decision does not."""
    if limits.pending <= 0:
        return
    pending = await session.scalar(select(func.count()).select_from(Approval).where(
        Approval.connection_id == connection_id, Approval.status == "pending"))
    if (pending or 0) >= limits.pending:
        # No time frees a pending slot; a decision or an expiry does. Ask again in a minute.
        raise TooManyRequests(f"this Connection already has {limits.pending} pending approvals, its limit; "
                              "wait for decisions or cancel some", retry_after=60)
