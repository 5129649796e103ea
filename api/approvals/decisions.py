"""Reviewers' decisions, expiry, and the execution's progress: the rest of the state machine.

However many clicks race, one decision is recorded: the approval row is locked (PostgreSQL) or the
single writer runs one decision at a time (SQLite), its status is checked inside the transaction,
each person can vote once per revision (a unique index on the Slack id, whatever the surface), and
the version column stops a second process.

Votes bind a revision: every decision names the revision its maker saw, a stale one changes
nothing, and an edit starts a new revision on which earlier approvals no longer count, so the
payload executed is exactly the one the last quorum approved. Who may decide is asked of
`authority` here, so no surface can skip it.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from api.actions import get_action
from api.approvals import state
from api.approvals.actors import SYSTEM, Actor
from api.approvals.authority import Authority, NotAnApprover
from api.approvals.enums import ApprovalStatus, ExecutionStatus, Verdict
from api.approvals.events import Event
from api.approvals.models import Approval, Decision
from api.approvals.service import ApprovalService
from api.audit import service as audit
from api.errors import NotFound, ValidationFailed
from api.outbox.kinds import JobKind
from api.outbox.service import enqueue


@dataclass
class DecisionResult:
    approval: Approval
    # decided: this decision made it final · vote: counted, more approvals needed ·
    # already_final: it was decided, expired or cancelled before · duplicate_vote: this person already
    # voted on this revision · stale: the decision named an older revision than the current one
    outcome: str
    revised: bool = False  # this decision's edit made a new revision (earlier approvals no longer count)

    @property
    def recorded(self) -> bool:
        return self.outcome in ("decided", "vote")

EXPIRED_NOTE = "Expired before a decision."


def current_votes(approval: Approval) -> list[Decision]:
    """The approve votes that count toward the quorum: those on the current revision."""
    return [d for d in approval.decisions if d.verdict == Verdict.APPROVE and d.revision == approval.revision]


class Decisions:
    def __init__(self, service: ApprovalService, authority: Authority) -> None:
        self.service = service
        self.authority = authority
        self.effects = service.effects

    async def decide(self, approval_id: str, actor: Actor, verdict: Verdict | str, *, note: str | None = None,
                     edits: dict[str, Any] | None = None, revision: int | None = None) -> DecisionResult:
        """Record a person's decision on the revision they saw (`revision`; None: the current one).

        Raises NotAnApprover when `actor` may not decide this request now (the attempt is audited),
        and ValidationFailed for a reviewer's edit that cannot be applied (audited too).
        """
        if verdict not in tuple(Verdict):
            raise ValidationFailed(f"verdict must be approve or reject, not {verdict!r}")
        verdict = Verdict(verdict)  # surfaces may pass the plain word (a button's value, a CLI argument)
        if verdict == Verdict.REJECT and not (note and note.strip()):
            raise ValidationFailed("a rejection needs a note", errors=[{"loc": ["note"], "msg": "required"}])
        if edits and verdict != Verdict.APPROVE:
            raise ValidationFailed("edits go with an approval")
        approval = await self.service.get(None, approval_id)
        authorisation = await self.authority.may_decide(actor.id, approval)
        if not authorisation.allowed:
            await self._audit(approval, "decision.refused", actor,
                              {"reason": "not an approver", "why": authorisation.reason, "verdict": verdict,
                               "revision": revision})
            raise NotAnApprover(f"{actor.id} may not decide {approval_id}: {authorisation.reason}")
        try:
            if edits and approval.status == ApprovalStatus.PENDING:
                await self._check_with_stripe(approval, edits)
            result = await self._write(approval_id, actor, verdict, note, edits, revision)
        except ValidationFailed as exc:
            await self._audit(approval, "decision.edit_refused", actor,
                              {"edits": edits, "errors": exc.errors or exc.detail, "revision": revision})
            raise
        if result.approval.is_settled:
            self.service.waiters.notify(approval_id, result.approval)
        return result

    async def _write(self, approval_id: str, actor: Actor, verdict: Verdict, note: str | None,
                     edits: dict[str, Any] | None, revision: int | None) -> DecisionResult:
        for _ in range(3):
            try:
                return await self.service.db.write(
                    lambda session: self._decide(session, approval_id, actor, verdict, note, edits, revision))
            except (StaleDataError, IntegrityError):
                continue  # another process decided in between: read again and report what happened
        raise RuntimeError(f"could not record a decision on {approval_id}")

    async def _audit(self, approval: Approval, event: str, actor: Actor, detail: dict[str, Any]) -> None:
        """An attempt that changed nothing, kept in its own transaction: who tried matters too."""
        async def record(session: AsyncSession) -> None:
            audit.record(session, event, approval_id=approval.id, connection_id=approval.connection_id,
                         actor=actor.audit_dict(), detail=detail)

        await self.service.db.write(record)

    async def _decide(self, session: AsyncSession, approval_id: str, actor: Actor, verdict: Verdict,
                      note: str | None, edits: dict[str, Any] | None, revision: int | None) -> DecisionResult:
        # One round trip: the row (locked on PostgreSQL) with its votes joined in.
        approval = await session.get(Approval, approval_id, with_for_update={"of": Approval},
                                     options=[joinedload(Approval.decisions)])
        if approval is None:
            raise NotFound(f"no approval {approval_id}")
        if approval.status == ApprovalStatus.PENDING and approval.expires_at <= self.service.clock():
            await state.finalize(session, self.effects, approval, ApprovalStatus.EXPIRED, SYSTEM, EXPIRED_NOTE)

        def refuse(event: str, outcome: str, **detail: Any) -> DecisionResult:
            audit.record(session, event, approval_id=approval.id, connection_id=approval.connection_id,
                         actor=actor.audit_dict(), detail={"verdict": verdict, **detail})
            return DecisionResult(approval, outcome)

        if approval.status != ApprovalStatus.PENDING:
            return refuse("decision.refused", "already_final", reason=f"already {approval.status}")
        if revision is not None and revision != approval.revision:
            return refuse("decision.refused", "stale", reason="stale revision", seen=revision,
                          current=approval.revision)

        modified = None
        if edits:
            spec = get_action(approval.action)
            if spec is None or not spec.editable:
                raise ValidationFailed(f"{approval.action} has no fields a reviewer may change")
            modified, _ = spec.apply_edits(approval.effective_details, edits)
            if modified == approval.effective_details:
                modified = None  # an "edit" that changes nothing is a plain approval of this revision
        if modified is None and any(d.actor_id == actor.id and d.revision == approval.revision
                                    for d in approval.decisions):
            return refuse("decision.duplicate", "duplicate_vote", revision=approval.revision)

        if modified is not None:
            self._revise(session, approval, actor, modified)
        # Appended to the loaded collection, so the count below sees it without reading it back.
        approval.decisions.append(Decision(verdict=verdict, actor_type=actor.type, actor_id=actor.id,
                                           actor_name=actor.name, note=note, edits=edits or None,
                                           revision=approval.revision, via=actor.via,
                                           created_at=self.service.clock()))
        if verdict == Verdict.REJECT:
            await state.finalize(session, self.effects, approval, ApprovalStatus.REJECTED, actor, note)
            return DecisionResult(approval, "decided")
        votes = len(current_votes(approval))
        if votes < approval.required_approvals:
            audit.record(session, "approval.vote", approval_id=approval.id, connection_id=approval.connection_id,
                         actor=actor.audit_dict(),
                         detail={"votes": votes, "required": approval.required_approvals, "note": note,
                                 "revision": approval.revision, "changes": approval.changes or None})
            await session.flush()
            await self.effects.emit(session, approval, Event.VOTE)
            if modified is not None:
                await self.effects.emit(session, approval, Event.REVISED)
            return DecisionResult(approval, "vote", revised=modified is not None)
        await state.finalize(session, self.effects, approval, ApprovalStatus.APPROVED, actor, note)
        if approval.execute:
            await enqueue(session, JobKind.EXECUTE, {"approval_id": approval.id}, key=f"execute:{approval.id}",
                          max_attempts=10)
        return DecisionResult(approval, "decided", revised=modified is not None)

    def _revise(self, session: AsyncSession, approval: Approval, actor: Actor, modified: dict[str, Any]) -> None:
        """A reviewer's edit: a new revision, on which every approver votes afresh."""
        before = approval.effective_details
        approval.revision += 1
        approval.modified_details = modified
        approval.changes = _changes(approval.details, modified)
        earlier = [d.actor_id for d in approval.decisions if d.verdict == Verdict.APPROVE
                   and d.revision == approval.revision - 1]
        audit.record(session, "approval.revised", approval_id=approval.id, connection_id=approval.connection_id,
                     actor=actor.audit_dict(),
                     detail={"revision": approval.revision, "changes": _changes(before, modified),
                             "votesReset": earlier})

    async def _check_with_stripe(self, approval: Approval, edits: dict[str, Any]) -> None:
        """The action's own limits that only Stripe knows (a refund's ceiling), before the transaction:
        a Stripe round trip must not hold the row's lock."""
        spec = get_action(approval.action)
        gateway = self.service.gateway
        if spec is None or not gateway.configured:
            return  # without Stripe the execution itself fails, clearly
        await spec.check_edits(gateway, approval.details, edits)

    async def expire(self, approval_id: str) -> Approval | None:
        """Expire a pending request whose time has come; None when there is nothing to do."""
        async def write(session: AsyncSession) -> Approval | None:
            approval = await session.get(Approval, approval_id, with_for_update=True)
            if approval is None or approval.status != ApprovalStatus.PENDING:
                return None
            if approval.expires_at > self.service.clock():
                return None
            await state.finalize(session, self.effects, approval, ApprovalStatus.EXPIRED, SYSTEM, EXPIRED_NOTE)
            return approval

        approval = await self.service.db.write(write)
        if approval is not None:
            self.service.waiters.notify(approval_id, approval)
        return approval

    async def record_execution(self, approval_id: str, *, status: ExecutionStatus, **outcome: Any) -> Approval:
        async def write(session: AsyncSession) -> Approval:
            approval = await session.get(Approval, approval_id, with_for_update=True)
            if approval is None:
                raise NotFound(f"no approval {approval_id}")
            if approval.execution_status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
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
