"""The approval service: intake, reads, holds, cancellation. Decisions live in `decisions.py`.

Each public method is one use case and owns its transaction through `Database.write`; the
functions it runs inside take the session and only flush.
"""

import base64
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.actions import get_action
from api.approvals import state
from api.approvals.actors import Actor
from api.approvals.effects import Effects
from api.approvals.enums import ApprovalStatus, ExecutionStatus, PolicyVerdict
from api.approvals.events import Event
from api.approvals.models import NEW_ROW, Approval, as_row, unattached
from api.approvals.schemas import ApprovalCreate
from api.approvals.waiters import Waiters
from api.audit import service as audit
from api.callbacks.ssrf import check_callback_url
from api.config import MAX_HOLD_MS, Settings
from api.connections.models import Connection
from api.db import Database
from api.deferred import defer_insert
from api.errors import Conflict, NotFound, ValidationFailed
from api.execution.gateway import StripeGateway, StripeGatewayError
from api.facts import Contradicted, Verification, Verifier, stripe_variable
from api.ids import new_id
from api.limits import HoldSlots, IntakeGate, IntakeLimits, Ticket, check_before_lookup, serialize
from api.outbox.kinds import JobKind
from api.outbox.service import enqueue
from api.policy import Policy, PolicyDecision, PolicyInput, Totals, empty_totals
from api.usage import track as usage

log = logging.getLogger(__name__)
APPROVAL_ID = re.compile(r"apr_[0-9a-z]{1,60}")

VERIFY_ATTEMPTS = 12  # with the outbox's doubling back-off (2 s, 4 s, … 34 min): about an hour of trying

APPROVAL_TABLE = Approval.__table__

TotalsProvider = Callable[[AsyncSession, Connection, str, dict[str, Any], datetime], Awaitable[Totals]]


@dataclass
class Intake:
    """One request as the service takes it, whichever API it came through."""

    body: ApprovalCreate
    idempotency_key: str | None = None
    surface: str = "native"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What the policy decided for one request, and what intake makes of it."""

    decision: PolicyDecision
    verdict: PolicyVerdict  # the policy's decision as intake applies it (a `pass` for a write reviews)
    expires_at: datetime


@dataclass
class Created:
    approval: Approval
    replayed: bool  # an Idempotency-Key matched an earlier request


class ApprovalService:
    def __init__(self, db: Database, *, settings: Settings, waiters: Waiters, effects: Effects,
                 policy: Callable[[], Policy], gateway: StripeGateway, totals: TotalsProvider,
                 clock: Callable[[], datetime]) -> None:
        self.db = db
        self.settings = settings
        self.waiters = waiters
        self.effects = effects
        self.policy = policy
        self.gateway = gateway
        self.totals = totals
        self.clock = clock
        self.verifier = Verifier(gateway)
        self.limits = IntakeLimits.from_settings(settings)
        self.gate = IntakeGate(db, self.limits)
        self.hold_slots = HoldSlots(db, settings.limit_holds, clock)

    # ---- intake -------------------------------------------------------------------------------

    async def create(self, connection: Connection, intake: Intake) -> Created:
        body = intake.body
        if intake.idempotency_key is not None:
            earlier = await self._find_by_key(connection.id, intake.idempotency_key)
            if earlier is not None:
                return self._replay(earlier, body)
        spec = get_action(body.action)
        if spec is None and body.execute:
            raise ValidationFailed(
                f"{body.action!r} is not in the action catalogue; actions outside it are accepted only with "
                '"execute": false', errors=[{"loc": ["action"], "msg": "unknown action with execute: true"}])
        details = spec.validate_details(body.details) if spec else body.details
        if body.callback_url is not None:
            await check_callback_url(body.callback_url, allow_private=self.settings.callback_allow_private)
        policy = self.policy()
        now = self.clock()
        verification = await self._verify(body.action, details, now)
        if verification is not None:
            details = {**details, **verification.fills}  # Stripe's currency and customer, where the agent gave none
        facts = verification.document() if verification is not None else None
        unverified = verification is not None and verification.status == "unverified"
        read_only = spec is not None and spec.read_only
        # A write whose policy reads totals is decided inside the inserting transaction, under the
        # Connection's (and customer's) lock, so concurrent requests count each other. Lookups move no
        # money and may call Stripe, which must not happen under a lock: they are decided first.
        decide_locked = policy.reads_totals and not read_only
        early: Outcome | None = None
        if not decide_locked:
            totals = empty_totals()  # zeros nobody reads: a policy without `totals` spares the aggregate queries
            if policy.reads_totals:
                async with self.db.read() as session:
                    totals = await self.totals(session, connection, body.action, details, now)
            early = self._decide(policy, connection, body, details, totals, now, read_only, facts)
        lookup = None
        if early is not None and early.verdict == PolicyVerdict.PASS:
            async with self.db.read() as session:
                await check_before_lookup(session, self.limits, connection.id, now)
            lookup = await self._run_lookup(spec, details)
        customer = details.get("customer_id")
        locks = [("connection", connection.id)]
        if decide_locked and isinstance(customer, str) and customer:
            locks.append(("customer", customer))

        execute = body.execute if body.execute is not None else spec is not None
        request_hash, request = body.fingerprint_and_record()
        # Everything that does not depend on the decision is prepared here, not in the (SQLite) writer.
        fields = dict(
            id=new_id("apr"), connection_id=connection.id, idempotency_key=intake.idempotency_key,
            request_hash=request_hash, surface=intake.surface, status=ApprovalStatus.PENDING, action=body.action,
            summary=body.summary, details=details, justification=body.justification, changes={},
            risk_level=body.risk_level, priority=body.priority, agent_name=body.agent_name,
            request_metadata=body.metadata or {}, extra=intake.extra, callback_url=body.callback_url,
            execute=execute and not read_only, execution_status=ExecutionStatus.NOT_REQUESTED, stripe_facts=facts,
            created_at=now, updated_at=now)

        async def write(session: AsyncSession, ticket: Ticket) -> Approval:
            await serialize(session, *locks)
            outcome = early
            if outcome is None:
                totals = await self.totals(session, connection, body.action, details, now)
                outcome = self._decide(policy, connection, body, details, totals, now, read_only, facts)
            await ticket.check(session, lookup=outcome.verdict == PolicyVerdict.PASS,
                               review=outcome.verdict == PolicyVerdict.REVIEW)
            decision = outcome.decision
            values = {**fields, "expires_at": outcome.expires_at, "rule": decision.rule,
                      "policy_version": decision.policy_version,
                      "approvers": decision.approvers or self.settings.approvers,
                      "required_approvals": decision.required_approvals}
            # Rows are not written here: a group commit inserts its rows together at its end (queries
            # of later callers in the batch write them first, so those callers do count them).
            if outcome.verdict == PolicyVerdict.REVIEW:
                # Nothing more happens to it in this transaction: one Core row, no unit of work.
                defer_insert(session, APPROVAL_TABLE, as_row(values))
                approval = unattached(values)
            else:
                # A rule decides it now: the state machine changes it as an ORM object.
                approval = Approval(**values, **NEW_ROW, decisions=[])
                session.add(approval)
            usage.added(session, approval)  # counted from now; a rule's rejection below takes it off again
            audit.record(session, "approval.created", approval_id=approval.id, connection_id=connection.id,
                         actor={"type": "connection", "id": connection.id, "name": connection.name},
                         after=state.snapshot(approval),
                         detail={"rule": decision.rule, "decision": decision.decision,
                                 "policyVersion": decision.policy_version, "policyErrors": decision.errors or None,
                                 "request": {**request, "details": details},
                                 "surface": intake.surface, "idempotencyKey": intake.idempotency_key},
                         # Built here from JSON values: the body as it dumps, the catalogue's details as
                         # theirs dump (details outside the catalogue are the caller's: read back).
                         json_ready=spec is not None)
            await self._apply_policy(session, approval, outcome.verdict, decision, lookup)
            if unverified and outcome.verdict == PolicyVerdict.REVIEW:
                await enqueue(session, JobKind.VERIFY, {"approval_id": approval.id}, key=f"verify:{approval.id}",
                              max_attempts=VERIFY_ATTEMPTS)
            return approval

        try:
            async with self.gate.admit(connection.id, now) as ticket:
                created = await self.db.write(lambda session: write(session, ticket))
        except IntegrityError:
            # Two requests with one Idempotency-Key raced; the other one won.
            earlier = await self._find_by_key(connection.id, intake.idempotency_key or "")
            if earlier is None:
                raise
            return self._replay(earlier, body)
        if created.is_settled:
            self.waiters.notify(created.id, created)
        return Created(created, replayed=False)

    def _decide(self, policy: Policy, connection: Connection, body: ApprovalCreate, details: dict[str, Any],
                totals: Totals, now: datetime, read_only: bool, facts: dict[str, Any] | None) -> "Outcome":
        decision = policy.evaluate(PolicyInput(
            action=body.action, details=details, connection={"id": connection.id, "name": connection.name},
            request={"riskLevel": body.risk_level, "priority": body.priority, "agentName": body.agent_name,
                     "metadata": body.metadata or {}}, totals=totals, now=now, stripe=stripe_variable(facts)))
        if decision.errors:
            log.warning("policy conditions failed for a %s request: %s", body.action, decision.errors)
        verdict = decision.decision
        if verdict == PolicyVerdict.PASS and not read_only:
            verdict = PolicyVerdict.REVIEW  # `pass` executes without review: only lookups may do that
        elif verdict == PolicyVerdict.APPROVE and read_only:
            verdict = PolicyVerdict.PASS  # an approved lookup has nothing to wait for: run it now
        if (facts or {}).get("status") == "unverified" and verdict in (PolicyVerdict.APPROVE, PolicyVerdict.PASS):
            verdict = PolicyVerdict.REVIEW  # nothing is approved on facts Stripe has not confirmed
        return Outcome(decision, verdict, self._expiry(body, decision, policy, now))

    async def _verify(self, action: str, details: dict[str, Any], now: datetime) -> Verification | None:
        """Stripe's facts for a catalogue write; a contradiction is the agent's 422, nothing stored."""
        try:
            return await self.verifier.verify(action, details, now)
        except Contradicted as exc:
            raise ValidationFailed(f"the request does not match Stripe: {exc.field} {exc.message}",
                                   errors=[exc.as_error()]) from None

    async def _apply_policy(self, session: AsyncSession, approval: Approval, verdict: PolicyVerdict,
                            decision: PolicyDecision, lookup: dict[str, Any] | None) -> None:
        rule = Actor("rule", decision.rule or "default policy", decision.rule)
        if verdict == PolicyVerdict.REVIEW:
            await self.effects.emit(session, approval, Event.CREATED)
            await enqueue(session, JobKind.EXPIRE_APPROVAL, {"approval_id": approval.id}, run_at=approval.expires_at)
            return
        if verdict == PolicyVerdict.REJECT:
            await self.effects.emit(session, approval, Event.AUTO_DECIDED)
            await state.finalize(session, self.effects, approval, ApprovalStatus.REJECTED, rule, decision.note)
            return
        if verdict == PolicyVerdict.PASS:
            approval.status = ApprovalStatus.APPROVED
            approval.decided_by, approval.decided_at = rule.as_dict(), self.clock()
            await state.record_execution(session, self.effects, approval, **(lookup or {}))
            return
        await self.effects.emit(session, approval, Event.AUTO_DECIDED)
        await state.finalize(session, self.effects, approval, ApprovalStatus.APPROVED, rule, decision.note)
        if approval.execute:
            await enqueue(session, JobKind.EXECUTE, {"approval_id": approval.id}, key=f"execute:{approval.id}",
                          max_attempts=10)

    async def _run_lookup(self, spec: Any, details: dict[str, Any]) -> dict[str, Any]:
        """Run a read-only action now; its answer is returned inline."""
        try:
            outcome = await spec.execute(self.gateway, details, idempotency_key=None)
        except StripeGatewayError as exc:
            return {"status": ExecutionStatus.FAILED, "error": exc.as_error()}
        return {"status": ExecutionStatus.SUCCEEDED, "stripe_object_id": outcome.stripe_object_id,
                "result": outcome.result}

    def _expiry(self, body: ApprovalCreate, decision: PolicyDecision, policy: Policy, now: datetime) -> datetime:
        if body.expires_at is None:
            return now + decision.expires_in
        bound: timedelta = policy.defaults.max_expires_in
        if body.expires_at <= now:
            raise ValidationFailed("expiresAt is in the past", errors=[{"loc": ["expiresAt"], "msg": "in the past"}])
        if body.expires_at > now + bound:
            raise ValidationFailed(f"expiresAt is beyond the policy's bound of {bound}",
                                   errors=[{"loc": ["expiresAt"], "msg": f"at most {bound} from now"}])
        return body.expires_at

    async def _find_by_key(self, connection_id: str, key: str) -> Approval | None:
        async with self.db.read() as session:
            return await session.scalar(
                select(Approval).where(Approval.connection_id == connection_id, Approval.idempotency_key == key))

    @staticmethod
    def _replay(earlier: Approval, body: ApprovalCreate) -> Created:
        if earlier.request_hash != body.fingerprint():
            raise Conflict("this Idempotency-Key was used with a different request body")
        return Created(earlier, replayed=True)

    # ---- reads ----------------------------------------------------------------------------------

    async def get(self, connection_id: str | None, approval_id: str) -> Approval:
        """One approval; with a connection id, only if that Connection owns it (else 404, not 403)."""
        if not APPROVAL_ID.fullmatch(approval_id):  # never one of ours; PostgreSQL would refuse a NUL in it
            raise NotFound(f"no approval {approval_id}")
        async with self.db.read() as session:
            approval = await session.get(Approval, approval_id)
        if approval is None or (connection_id is not None and approval.connection_id != connection_id):
            raise NotFound(f"no approval {approval_id}")
        return approval

    def hold_slot(self, connection_id: str, wait_ms: int) -> AbstractAsyncContextManager[None]:
        """One of the Connection's concurrent holds for the duration of a `timeoutMs`/`waitMs` request."""
        return self.hold_slots.claim(connection_id, min(wait_ms, MAX_HOLD_MS) / 1000)

    async def hold(self, connection_id: str | None, approval_id: str, wait_ms: int) -> Approval:
        """The approval once settled, or as it stands after `wait_ms` (capped at MAX_HOLD_MS)."""
        if wait_ms <= 0:
            return await self.get(connection_id, approval_id)
        # The hold's first load is the ownership check and the state read both: one read per hold, and
        # no session is kept while it waits (each load opens and closes its own).
        return await self.waiters.hold(approval_id, min(wait_ms, MAX_HOLD_MS) / 1000,
                                       lambda: self.get(connection_id, approval_id))

    async def list(self, connection_id: str | None, *, status: str | None = None, limit: int = 50,
                   cursor: str | None = None) -> tuple[list[Approval], str | None]:
        """Newest first; ids are time-ordered, so the cursor is the last id seen."""
        query = select(Approval).order_by(Approval.id.desc()).limit(limit + 1)
        if connection_id is not None:
            query = query.where(Approval.connection_id == connection_id)
        if status is not None:
            query = query.where(Approval.status == status)
        if cursor is not None:
            query = query.where(Approval.id < decode_cursor(cursor))
        async with self.db.read() as session:
            rows = list((await session.scalars(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id) if more and rows else None

    # ---- cancellation -----------------------------------------------------------------------------

    async def cancel(self, connection_id: str | None, approval_id: str, actor: Actor) -> Approval:
        await self.get(connection_id, approval_id)

        async def write(session: AsyncSession) -> Approval:
            approval = await session.get(Approval, approval_id, with_for_update=True)
            assert approval is not None
            if approval.status != ApprovalStatus.PENDING:
                raise Conflict(f"approval {approval_id} is {approval.status}; only pending requests can be cancelled")
            await state.finalize(session, self.effects, approval, ApprovalStatus.CANCELLED, actor, None)
            return approval

        approval = await self.db.write(write)
        self.waiters.notify(approval.id, approval)
        return approval


def encode_cursor(approval_id: str) -> str:
    return base64.urlsafe_b64encode(approval_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        value = ""
    if not value.startswith("apr_"):
        raise ValidationFailed("cursor is not one this API gave out", errors=[{"loc": ["cursor"], "msg": "invalid"}])
    return value
