"""The intake limits: requests and lookups per minute, and pending approvals, per Connection.

Counted from the approvals table (index `ix_approvals_connection_created`), so every replica sees
the same counts. `check_intake` runs inside the creating transaction, after `serialize`, so N
concurrent requests against a limit of k let exactly k through.
"""

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.actions import ACTIONS
from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.config import Settings
from api.deferred import pending
from api.errors import TooManyRequests

MINUTE = timedelta(minutes=1)
LOOKUPS = tuple(name for name, spec in ACTIONS.items() if spec.read_only)
# No time frees a pending slot, a decision or an expiry does: ask again in a minute.
PENDING_RETRY_SECONDS = 60


@dataclass(frozen=True)
class IntakeLimits:
    """0 turns a limit off."""

    requests_per_minute: int
    lookups_per_minute: int
    pending: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "IntakeLimits":
        return cls(settings.limit_requests_per_minute, settings.limit_lookups_per_minute, settings.limit_pending)


def _count_up_to(limit: int, *conditions: ColumnElement[bool]) -> ColumnElement[int]:
    """How many approvals match, counting no further than `limit`: the check costs the same however
    far over its limit a Connection is."""
    if limit <= 0:
        return literal(0)
    matching = select(Approval.id).where(*conditions).limit(limit).subquery()
    return select(func.count()).select_from(matching).scalar_subquery()


_CONNECTION, _SINCE = bindparam("connection_id"), bindparam("since")
_MINE = Approval.connection_id == _CONNECTION
_WHERE = {"requests": (_MINE, Approval.created_at > _SINCE),
          "lookups": (_MINE, Approval.created_at > _SINCE, Approval.action.in_(LOOKUPS)),
          "pending": (_MINE, Approval.status == ApprovalStatus.PENDING)}


@functools.cache
def _counts(requests: int, lookups: int, pending: int) -> Select[tuple[int, int, int]]:
    """One SELECT of the three counts, built once per set of limits (intake runs it for every request)."""
    return select(_count_up_to(requests, *_WHERE["requests"]), _count_up_to(lookups, *_WHERE["lookups"]),
                  _count_up_to(pending, *_WHERE["pending"]))


def applicable(limits: IntakeLimits, *, lookup: bool, review: bool) -> dict[str, int]:
    """The limits one new approval must fit, by what they count; limits that are off are left out.
    Lookups also count as requests; a rule's decision does not count against the pending limit."""
    candidates = {"requests": limits.requests_per_minute, "lookups": limits.lookups_per_minute if lookup else 0,
                  "pending": limits.pending if review else 0}
    return {what: limit for what, limit in candidates.items() if limit > 0}


async def read_counts(session: AsyncSession, limits: dict[str, int], connection_id: str,
                      now: datetime) -> dict[str, int]:
    statement = _counts(limits.get("requests", 0), limits.get("lookups", 0), limits.get("pending", 0))
    with session.no_autoflush:
        row = (await session.execute(statement, {"connection_id": connection_id, "since": now - MINUTE})).one()
    return dict(zip(("requests", "lookups", "pending"), (int(v) for v in row), strict=True))


async def check_intake(session: AsyncSession, limits: IntakeLimits, connection_id: str, now: datetime, *,
                       lookup: bool, review: bool) -> None:
    """Refuse with TooManyRequests when one more approval would go over a limit.

    One query; approvals added earlier in this transaction and not written yet (a SQLite group
    commit inserts its rows together at its end: ORM objects, or Core rows queued by `api.deferred`)
    are counted from the session, so the check neither misses them nor forces a write per request.
    """
    limits_here = applicable(limits, lookup=lookup, review=review)
    if not limits_here:
        return
    stored = await read_counts(session, limits_here, connection_id, now)
    unflushed = [(row.action, row.status) for row in session.new
                 if isinstance(row, Approval) and row.connection_id == connection_id]
    unflushed += [(row["action"], row["status"]) for row in pending(session, Approval.__table__)
                  if row["connection_id"] == connection_id]
    added = {"requests": len(unflushed), "lookups": sum(action in LOOKUPS for action, _ in unflushed),
             "pending": sum(status == ApprovalStatus.PENDING for _, status in unflushed)}
    for what, limit in limits_here.items():
        if stored[what] + added[what] < limit:
            continue
        if what == "pending":
            raise TooManyRequests(f"this Connection already has {limit} pending approvals, its limit; "
                                  "wait for decisions or cancel some", retry_after=PENDING_RETRY_SECONDS)
        with session.no_autoflush:
            oldest = await session.scalar(select(func.min(Approval.created_at)).where(*_WHERE[what]),
                                          {"connection_id": connection_id, "since": now - MINUTE})
        raise TooManyRequests(f"this Connection is limited to {limit} {what} a minute",
                              retry_after=_retry_after(oldest, now))


def _retry_after(oldest: datetime | None, now: datetime) -> int:
    if oldest is None:  # all of them unflushed, made this instant
        return 60
    return max(1, math.ceil((oldest + MINUTE - now).total_seconds()))


async def check_before_lookup(session: AsyncSession, limits: IntakeLimits, connection_id: str,
                              now: datetime) -> None:
    """Before a lookup reaches Stripe: the same counts, read without the lock, so a refused lookup
    costs no Stripe call (the locked check at insert still decides)."""
    await check_intake(session, limits, connection_id, now, lookup=True, review=False)
