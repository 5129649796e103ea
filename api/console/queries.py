"""What the console's pages read: the queue, history with its filters, and one request's story."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval, Decision
from api.audit.models import AuditEvent
from api.callbacks.models import CallbackAttempt, CallbackDelivery
from api.connections.models import Connection
from api.db import Database
from api.money import parse_major

STATUSES = tuple(ApprovalStatus)
# History pages are read from at most this many rows matching the SQL filters; the person and
# amount filters are applied to those (they read JSON and votes, which differ per database).
HISTORY_SCAN = 5000
HISTORY_PAGE = 200


class FilterError(ValueError):
    """A history filter that cannot be read; the message names the field."""


@dataclass(frozen=True)
class HistoryFilter:
    status: ApprovalStatus | None = None
    action: str | None = None
    connection: str | None = None
    person: str | None = None
    since: date | None = None
    until: date | None = None
    min_amount: str | None = None
    max_amount: str | None = None

    @classmethod
    def parse(cls, query: dict[str, str]) -> "HistoryFilter":
        def text(name: str, limit: int = 200) -> str | None:
            value = (query.get(name) or "").strip()
            if len(value) > limit:
                raise FilterError(f"{name} is too long")
            return value or None

        status = text("status")
        if status is not None and status not in STATUSES:
            raise FilterError(f"status must be one of {', '.join(STATUSES)}")
        return cls(status=ApprovalStatus(status) if status else None, action=text("action"),
                   connection=text("connection"), person=text("person"),
                   since=_day(text("since"), "since"), until=_day(text("until"), "until"),
                   min_amount=_amount_text(text("min_amount", 30), "min_amount"),
                   max_amount=_amount_text(text("max_amount", 30), "max_amount"))

    def as_query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name} must be a date like 2026-11-28") from None


def _amount_text(value: str | None, name: str) -> str | None:
    if value is not None:
        try:
            parse_major(value, "usd")
        except ValueError as exc:
            raise FilterError(f"{name}: {exc}") from None
    return value


def amount_of(approval: Approval) -> tuple[int | None, str | None]:
    details = approval.effective_details
    amount, currency = details.get("amount_cents"), details.get("currency")
    amount = amount if isinstance(amount, int) and not isinstance(amount, bool) else None
    if not isinstance(currency, str):
        facts = (approval.stripe_facts or {}).get("facts") or {}
        currency = facts.get("currency") if isinstance(facts.get("currency"), str) else None
    return amount, currency.lower() if currency else None


def _matches(approval: Approval, wanted: HistoryFilter) -> bool:
    if wanted.person is not None:
        people = {str((approval.decided_by or {}).get(k) or "") for k in ("id", "name")}
        people |= {d.actor_id for d in approval.decisions} | {d.actor_name or "" for d in approval.decisions}
        if wanted.person not in people:
            return False
    if wanted.min_amount is None and wanted.max_amount is None:
        return True
    amount, currency = amount_of(approval)
    if amount is None:
        return False
    # Bounds are read in each request's own currency: "100" is $100 for a USD refund, ¥100 for JPY.
    try:
        low = parse_major(wanted.min_amount, currency or "usd") if wanted.min_amount else None
        high = parse_major(wanted.max_amount, currency or "usd") if wanted.max_amount else None
    except ValueError:
        return False  # "10.50" names no amount in a zero-decimal currency
    return (low is None or amount >= low) and (high is None or amount <= high)


async def history(db: Database, wanted: HistoryFilter, *, limit: int = HISTORY_PAGE) -> list[Approval]:
    """Newest first."""
    query = select(Approval).order_by(Approval.id.desc()).limit(HISTORY_SCAN)
    if wanted.status:
        query = query.where(Approval.status == wanted.status)
    if wanted.action:
        query = query.where(Approval.action == wanted.action)
    if wanted.connection:
        query = query.where(Approval.connection_id == wanted.connection)
    if wanted.since:
        query = query.where(Approval.created_at >= datetime.combine(wanted.since, time(), UTC))
    if wanted.until:
        query = query.where(Approval.created_at < datetime.combine(wanted.until + timedelta(days=1), time(), UTC))
    async with db.read() as session:
        rows = (await session.scalars(query)).all()
    return [row for row in rows if _matches(row, wanted)][:limit]


async def pending(db: Database) -> list[Approval]:
    """Oldest first: the request that has waited longest is reviewed first."""
    query = select(Approval).where(Approval.status == ApprovalStatus.PENDING).order_by(Approval.id).limit(HISTORY_PAGE)
    async with db.read() as session:
        return list((await session.scalars(query)).all())


async def connection_names(db: Database) -> dict[str, str]:
    async with db.read() as session:
        return {c.id: c.name for c in (await session.scalars(select(Connection))).all()}


@dataclass
class Story:
    """Everything about one request, for its page."""

    approval: Approval
    connection: Connection | None
    decisions: list[Decision]
    audit: list[AuditEvent]
    deliveries: list[tuple[CallbackDelivery, list[CallbackAttempt]]] = field(default_factory=list)


async def story(db: Database, approval_id: str) -> Story | None:
    async with db.read() as session:
        return await _story(session, approval_id)


async def _story(session: AsyncSession, approval_id: str) -> Story | None:
    approval = await session.get(Approval, approval_id)
    if approval is None:
        return None
    connection = await session.get(Connection, approval.connection_id)
    audit = (await session.scalars(select(AuditEvent).where(AuditEvent.approval_id == approval_id)
                                   .order_by(AuditEvent.seq))).all()
    deliveries = (await session.scalars(select(CallbackDelivery).where(CallbackDelivery.approval_id == approval_id)
                                        .order_by(CallbackDelivery.created_at, CallbackDelivery.id))).all()
    attempts: dict[str, list[CallbackAttempt]] = {}
    if deliveries:
        rows = await session.scalars(select(CallbackAttempt).where(
            CallbackAttempt.delivery_id.in_([d.id for d in deliveries])).order_by(CallbackAttempt.attempt))
        for attempt in rows.all():
            attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return Story(approval, connection, list(approval.decisions), list(audit),
                 [(d, attempts.get(d.id, [])) for d in deliveries])
