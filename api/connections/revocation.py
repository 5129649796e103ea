"""Revoking a Connection, and what that does to its work in flight.

Revocation is one transaction: the Connection is marked revoked and each of its pending approvals is
cancelled by the system through the usual effects (the agent's callback, the Slack message), so
nobody can still decide them. Work that had already been approved is stopped where it starts: the
execute job refuses a revoked Connection's approvals and the callback job does not send what was
queued before the revocation (`api.execution.job`, `api.callbacks.job`).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals import state
from api.approvals.actors import SYSTEM
from api.approvals.effects import Effects
from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.audit import service as audit
from api.connections.models import Connection
from api.db import utcnow
from api.errors import NotFound

CANCEL_NOTE = "Cancelled: the Connection that made this request was revoked."


@dataclass(frozen=True)
class Revoked:
    connection: Connection
    cancelled: list[Approval]
    already: bool  # it was revoked before; nothing changed


async def revoke(session: AsyncSession, effects: Effects, connection_id: str, actor: dict[str, Any]) -> Revoked:
    connection = await session.get(Connection, connection_id, with_for_update=True)
    if connection is None:
        raise NotFound(f"no Connection {connection_id}")
    if connection.revoked_at is not None:
        return Revoked(connection, [], already=True)
    # Every pending row is locked before anything is written, in one statement, so a decision racing
    # the revocation either commits first (and the approval is no longer pending) or waits and finds
    # it cancelled.
    pending = list((await session.scalars(
        select(Approval).where(Approval.connection_id == connection_id, Approval.status == ApprovalStatus.PENDING)
        .order_by(Approval.id).with_for_update())).all())
    connection.revoked_at = session.info.get("clock", utcnow)()
    await session.flush()
    audit.record(session, "connection.revoked", connection_id=connection.id, actor=actor,
                 detail={"cancelledApprovals": [a.id for a in pending]})
    for approval in pending:
        await state.finalize(session, effects, approval, ApprovalStatus.CANCELLED, SYSTEM, CANCEL_NOTE)
    return Revoked(connection, pending, already=False)


def queued_before_revocation(connection: Connection, queued_at: datetime) -> bool:
    """Work queued before its Connection was revoked must not start; what the revocation itself queued
    (the cancellations' callbacks) and what follows from it may."""
    return connection.revoked_at is not None and queued_at < connection.revoked_at
