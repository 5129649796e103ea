"""Transitions of one approval, applied inside the caller's transaction.

Each function checks the approval is in a state that allows the change, changes it, writes the
audit entry, and emits the effect; none commits. `approval.version` guards against another
process changing the same row in between (the UPDATE matches no row and the transaction fails).
"""

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.actors import Actor
from api.approvals.effects import Effects
from api.approvals.enums import ApprovalStatus, ExecutionStatus
from api.approvals.events import Event
from api.approvals.models import Approval
from api.approvals.waiters import CHANNEL
from api.audit import service as audit
from api.db import utcnow
from api.usage import track as usage


def snapshot(approval: Approval) -> dict[str, Any]:
    return {"status": approval.status, "execution": approval.execution_status,
            "modifiedDetails": approval.modified_details}


async def announce_if_settled(session: AsyncSession, approval: Approval) -> None:
    """Wake holds in other processes: NOTIFY is delivered only when the transaction commits."""
    if approval.is_settled and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, :id)"), {"channel": CHANNEL, "id": approval.id})


async def finalize(session: AsyncSession, effects: Effects, approval: Approval, status: ApprovalStatus, actor: Actor,
                   note: str | None, event: str | None = None) -> None:
    """Move a pending approval to a final status and start what follows from it."""
    before = snapshot(approval)
    counted = usage.counted(approval)
    approval.status = status
    approval.decided_by = actor.as_dict()
    approval.decided_at = session.info.get("clock", utcnow)()
    approval.decision_note = note
    if status == ApprovalStatus.APPROVED and approval.execute:
        approval.execution_status = ExecutionStatus.QUEUED
    usage.changed(session, approval, counted)  # rejected, expired and cancelled stop counting
    await session.flush()
    audit.record(session, f"approval.{status}", approval_id=approval.id, connection_id=approval.connection_id,
                 actor=actor.as_dict(), before=before, after=snapshot(approval),
                 detail={"note": note} if note else None)
    await effects.emit(session, approval, Event(event or status))
    await announce_if_settled(session, approval)


async def record_execution(session: AsyncSession, effects: Effects, approval: Approval, *, status: ExecutionStatus,
                           stripe_object_id: str | None = None, result: dict[str, Any] | None = None,
                           error: dict[str, Any] | None = None) -> None:
    """Store what Stripe answered; `status` is running, succeeded or failed."""
    before = snapshot(approval)
    counted = usage.counted(approval)
    approval.execution_status = status
    if status != ExecutionStatus.RUNNING:
        approval.stripe_object_id = stripe_object_id
        approval.execution_result = result
        approval.execution_error = error
        usage.changed(session, approval, counted)  # a whole refund adds what Stripe refunded
    await session.flush()
    ended = status != ExecutionStatus.RUNNING
    audit.record(session, f"execution.{status}", approval_id=approval.id, connection_id=approval.connection_id,
                 actor={"type": "system", "id": "stripe"}, before=before, after=snapshot(approval),
                 detail={"stripeObjectId": stripe_object_id, "error": error} if ended else None)
    if status == ExecutionStatus.SUCCEEDED:
        await effects.emit(session, approval, Event.EXECUTED)
    elif status == ExecutionStatus.FAILED:
        await effects.emit(session, approval, Event.EXECUTION_FAILED)
    await announce_if_settled(session, approval)


async def record_later_outcome(session: AsyncSession, effects: Effects, approval: Approval, *, status: ExecutionStatus,
                               result: dict[str, Any], error: dict[str, Any] | None,
                               actor: dict[str, Any]) -> None:
    """What Stripe reported after the execution ended: a refund or payout that failed, a payout paid,
    a dispute closed. `status` is succeeded or failed; the caller has checked the change is news."""
    before = {**snapshot(approval), "objectStatus": (approval.execution_result or {}).get("status")}
    counted = usage.counted(approval)
    approval.execution_status = status
    approval.execution_result = result
    approval.execution_error = error
    usage.changed(session, approval, counted)
    await session.flush()
    audit.record(session, "execution.updated", approval_id=approval.id, connection_id=approval.connection_id,
                 actor=actor, before=before,
                 after={**snapshot(approval), "objectStatus": result.get("status")},
                 detail={"stripeObjectId": approval.stripe_object_id, "error": error})
    await effects.emit(session, approval, Event.EXECUTION_UPDATED)
