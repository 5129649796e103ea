"""Reviewers' decisions, expiry, and the execution's progress: the rest of the state machine.

However many clicks race, one decision is recorded: the approval row is locked (PostgreSQL) or the
single writer runs one decision at a time (SQLite), its status is checked inside the transaction,
each person can vote once (a unique index), and the version column stops a second process.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from api.actions import EditRejected, get_action
from api.approvals import state
from api.approvals.actors import SYSTEM, Actor
from api.approvals.models import Approval, Decision
from api.approvals.service import ApprovalService
from api.audit import service as audit
from api.errors import NotFound, UpstreamUnavailable, ValidationFailed
from api.execution.gateway import StripeGatewayError
from api.money import format_money
from api.outbox.service import enqueue


@dataclass
class DecisionResult:
    approval: Approval
    # decided: this decision made it final · vote: counted, more approvals needed ·
    # already_final: it was decided, expired or cancelled before · duplicate_vote: this person already voted
    outcome: str

    @property
    def recorded(self) -> bool:
        return self.outcome in ("decided", "vote")


class Decisions:
    def __init__(self, service: ApprovalService) -> None:
        self.service = service
        self.effects = service.effects

    async def decide(self, approval_id: str, actor: Actor, verdict: str, *, note: str | None = None,
                     edits: dict[str, Any] | None = None) -> DecisionResult:
        if verdict not in ("approve", "reject"):
            raise ValidationFailed(f"verdict must be approve or reject, not {verdict!r}")
        if verdict == "reject" and not (note and note.strip()):
            raise ValidationFailed("a rejection needs a note", errors=[{"loc": ["note"], "msg": "required"}])
        if edits and verdict != "approve":
            raise ValidationFailed("edits go with an approval")
        if edits and "amount_cents" in edits:
            await self._check_refundable(approval_id, edits["amount_cents"])
        for _ in range(3):
            try:
                result = await self.service.db.write(
                    lambda session: self._decide(session, approval_id, actor, verdict, note, edits))
                break
            except (StaleDataError, IntegrityError):
                continue  # another process decided in between: read again and report what happened
        else:
            raise RuntimeError(f"could not record a decision on {approval_id}")
        if result.approval.is_settled:
            self.service.waiters.notify(approval_id, result.approval)
        return result

    async def _decide(self, session: AsyncSession, approval_id: str, actor: Actor, verdict: str,
                      note: str | None, edits: dict[str, Any] | None) -> DecisionResult:
        # One round trip: the row (locked on PostgreSQL) with its votes joined in.
        approval = await session.get(Approval, approval_id, with_for_update={"of": Approval},
                                     options=[joinedload(Approval.decisions)])
        if approval is None:
            raise NotFound(f"no approval {approval_id}")
        if approval.status == "pending" and approval.expires_at <= self.service.clock():
            await state.finalize(session, self.effects, approval, "expired", SYSTEM, "Expired before a decision.")
        if approval.status != "pending":
            audit.record(session, "decision.refused", approval_id=approval.id, actor=actor.as_dict(),
                         detail={"reason": f"already {approval.status}", "verdict": verdict})
            return DecisionResult(approval, "already_final")
        if any(d.actor_type == actor.type and d.actor_id == actor.id for d in approval.decisions):
            return DecisionResult(approval, "duplicate_vote")

        modified = None
        if edits:
            spec = get_action(approval.action)
            if spec is None or not spec.editable:
                raise ValidationFailed(f"{approval.action} has no fields a reviewer may change")
            modified, _ = spec.apply_edits(approval.effective_details, edits)

        # Appended to the loaded collection, so the count below sees it without reading it back.
        approval.decisions.append(Decision(verdict=verdict, actor_type=actor.type, actor_id=actor.id,
                                           actor_name=actor.name, note=note, edits=edits or None,
                                           created_at=self.service.clock()))
        if modified is not None:
            approval.modified_details = modified
            approval.changes = _changes(approval.details, modified)

        if verdict == "reject":
            await state.finalize(session, self.effects, approval, "rejected", actor, note)
            return DecisionResult(approval, "decided")
        votes = sum(1 for d in approval.decisions if d.verdict == "approve")
        if votes < approval.required_approvals:
            audit.record(session, "approval.vote", approval_id=approval.id, actor=actor.as_dict(),
                         detail={"votes": votes, "required": approval.required_approvals, "note": note,
                                 "changes": approval.changes or None})
            await session.flush()
            await self.effects.emit(session, approval, "vote")
            return DecisionResult(approval, "vote")
        await state.finalize(session, self.effects, approval, "approved", actor, note)
        if approval.execute:
            await enqueue(session, "stripe.execute", {"approval_id": approval.id}, key=f"execute:{approval.id}",
                          max_attempts=10)
        return DecisionResult(approval, "decided")

    async def _check_refundable(self, approval_id: str, amount: object) -> None:
        """A refund may be raised by a reviewer, but never above what Stripe can still refund."""
        approval = await self.service.get(None, approval_id)
        gateway = self.service.gateway
        if approval.action != "issue_refund" or not gateway.configured or not isinstance(amount, int):
            return  # without Stripe the execution itself fails, clearly
        details = approval.details
        try:
            refundable, currency = await gateway.refundable_amount(details.get("charge_id"),
                                                                   details.get("payment_intent_id"))
        except StripeGatewayError as exc:
            raise UpstreamUnavailable(f"could not ask Stripe what is refundable: {exc.message}") from exc
        if amount > refundable:
            raise EditRejected("amount_cents", f"only {format_money(refundable, currency)} can still be refunded")

    async def expire(self, approval_id: str) -> Approval | None:
        """Expire a pending request whose time has come; None when there is nothing to do."""
        async def write(session: AsyncSession) -> Approval | None:
            approval = await session.get(Approval, approval_id, with_for_update=True)
            if approval is None or approval.status != "pending":
                return None
            if approval.expires_at > self.service.clock():
                return None
            await state.finalize(session, self.effects, approval, "expired", SYSTEM, "Expired before a decision.")
            return approval

        approval = await self.service.db.write(write)
        if approval is not None:
            self.service.waiters.notify(approval_id, approval)
        return approval

    async def record_execution(self, approval_id: str, *, status: str, **outcome: Any) -> Approval:
        async def write(session: AsyncSession) -> Approval:
            approval = await session.get(Approval, approval_id, with_for_update=True)
            if approval is None:
                raise NotFound(f"no approval {approval_id}")
            if approval.execution_status in ("succeeded", "failed"):
                # The first outcome stands: a worker whose job was taken over after its lease
                # lapsed may still come back with an answer, and must not announce it twice.
                return approval
            await state.record_execution(session, self.effects, approval, status=status, **outcome)
            return approval

        approval = await self.service.db.write(write)
        if approval.is_settled:
            self.service.waiters.notify(approval_id, approval)
        return approval


def _changes(original: dict[str, Any], modified: dict[str, Any]) -> dict[str, Any]:
    """Each field that differs from what the agent asked for, old → new (cumulative over reviewers)."""
    keys = sorted(set(original) | set(modified))
    return {k: {"from": original.get(k), "to": modified.get(k)} for k in keys if original.get(k) != modified.get(k)}
