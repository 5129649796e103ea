"""An approval as the Block Kit builders want it: read from the database, rendered by state.

The builders are pure and take CONTRACT §3 dicts; this module is the one place that turns stored
rows into those dicts (plus the Connection's name, the revision the buttons point at, and who made
that revision).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.actions import EditableField, get_action
from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.approvals.schemas import approval_out
from api.config import Settings
from api.connections.models import Connection
from api.db import Database
from api.money import exponent
from bot.blocks import decided_message, review_message
from bot.models import Claim, SlackMessage

# Approve asks "are you sure?" above this many major units of the request's currency ($1,000.00,
# €1,000.00, ¥1,000): a slip of the thumb on a large amount costs more than one extra click.
CONFIRM_OVER_MAJOR = 1000


@dataclass(frozen=True)
class Snapshot:
    row: Approval
    # approval_out(row) + `version` (the revision buttons name), `revisedBy` and `connectionName`
    data: dict[str, Any]
    connection_name: str
    # The request's own review message (Slack's table, not the core's); None until it is posted.
    message: SlackMessage | None = None

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def version(self) -> int:
        """The row's version, which every change bumps: tells a job its picture is out of date."""
        return self.row.version

    @property
    def revision(self) -> int:
        """What buttons and modals carry: the content's revision, which votes do not change."""
        return self.row.revision

    @property
    def channel(self) -> str:
        return self.message.channel if self.message is not None else ""

    @property
    def ts(self) -> str | None:
        """The review message's ts; None while it is not posted (or the request is in a digest)."""
        return self.message.ts if self.message is not None else None

    @property
    def pending(self) -> bool:
        return self.row.status == ApprovalStatus.PENDING


async def _snapshots(session: AsyncSession, rows: Sequence[Approval]) -> list[Snapshot]:
    ids = {row.connection_id for row in rows}
    names: dict[str, str] = {}
    if ids:
        found = await session.execute(select(Connection.id, Connection.name).where(Connection.id.in_(ids)))
        names = {ident: name for ident, name in found.all()}
    reviewing: dict[str, list[str]] = {}
    pending = [row.id for row in rows if row.status == ApprovalStatus.PENDING]
    if pending:  # who said "I'm on it", in the order they did
        claims = await session.execute(select(Claim.approval_id, Claim.user_id)
                                       .where(Claim.approval_id.in_(pending)).order_by(Claim.id))
        for approval_id, user_id in claims.all():
            reviewing.setdefault(approval_id, []).append(user_id)
    messages: dict[str, SlackMessage] = {}
    if rows:
        found_messages = await session.scalars(select(SlackMessage).where(
            SlackMessage.approval_id.in_([row.id for row in rows])))
        messages = {message.approval_id: message for message in found_messages.all()}
    out = []
    for row in rows:
        name = names.get(row.connection_id, row.connection_id)
        # riskScore and trace come only from the Cheqpoint-compatible API; reviewers see them too.
        # reviewingBy: the Slack users who claimed it ("I'm on it").
        data = {**approval_out(row), "version": row.revision, "revisedBy": revised_by(row), "connectionName": name,
                "riskScore": (row.extra or {}).get("riskScore"), "trace": (row.extra or {}).get("trace"),
                "reviewingBy": reviewing.get(row.id, [])}
        out.append(Snapshot(row, data, name, messages.get(row.id)))
    return out


def revised_by(row: Approval) -> dict[str, Any] | None:
    """Who made the current revision (the edit that opened it), or None while it is as the agent asked."""
    if row.revision <= 1:
        return None
    for vote in reversed(row.decisions):
        if vote.revision == row.revision and vote.edits:
            return {"type": vote.actor_type, "id": vote.actor_id, "name": vote.actor_name}
    return None


async def load(db: Database, approval_id: str) -> Snapshot | None:
    async with db.read() as session:
        row = await session.get(Approval, approval_id)
        return (await _snapshots(session, [row]))[0] if row is not None else None


async def load_many(db: Database, approval_ids: Sequence[str]) -> dict[str, Snapshot]:
    """`load` for several approvals in one read: the same five statements for N as for one."""
    async with db.read() as session:
        rows = (await session.scalars(select(Approval).where(Approval.id.in_(approval_ids)))).all()
        return {snapshot.id: snapshot for snapshot in await _snapshots(session, list(rows))}


async def load_where(db: Database, *criteria: Any, order_by: Any, limit: int) -> list[Snapshot]:
    async with db.read() as session:
        rows = (await session.scalars(select(Approval).where(*criteria).order_by(order_by).limit(limit))).all()
        return await _snapshots(session, list(rows))


def editable_fields(row: Approval) -> tuple[EditableField, ...]:
    spec = get_action(row.action)
    return spec.editable_for(row.effective_details) if spec is not None else ()


def confirm_over_minor(data: dict[str, Any]) -> int | None:
    currency = (data.get("details") or {}).get("currency")
    if not isinstance(currency, str) or not currency:
        return None
    return CONFIRM_OVER_MAJOR * 10 ** exponent(currency)


def message(snapshot: Snapshot, settings: Settings) -> tuple[str, list[dict]]:
    """The review message as it should read now: with buttons while pending, without after."""
    test_mode, stripe_configured = settings.stripe_test_mode, settings.stripe_secret_key is not None
    if snapshot.pending:
        return review_message(snapshot.data, connection_name=snapshot.connection_name, test_mode=test_mode,
                              version=snapshot.revision, confirm_over_minor=confirm_over_minor(snapshot.data),
                              can_edit=bool(editable_fields(snapshot.row)), stripe_configured=stripe_configured)
    return decided_message(snapshot.data, connection_name=snapshot.connection_name, test_mode=test_mode,
                           stripe_configured=stripe_configured)
