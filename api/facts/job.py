"""The `stripe.verify` job: verify a request that was accepted while Stripe could not be asked.

Queued at intake for a request sent to review unverified. Each attempt reads Stripe afresh; Stripe
still unreachable → try again later (the outbox's back-off). Verified → the facts are stored, the
details the agent left out are filled in, and the event `verified` lets Slack refresh the card. A
contradiction → the request is rejected by the system before anyone acts on it, with the reason in
`decisionNote`.
"""

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals import state
from api.approvals.actors import Actor
from api.approvals.enums import ApprovalStatus
from api.approvals.events import Event
from api.approvals.models import Approval
from api.audit import service as audit
from api.errors import NotFound
from api.facts.models import Contradicted, Verification
from api.outbox.registry import JobContext, Park, Retry
from api.usage import track as usage

if TYPE_CHECKING:
    from api.main import Container

log = logging.getLogger(__name__)

# A system decision, told apart from expiry: asking again with the same details cannot succeed.
STRIPE_VERIFICATION = Actor("system", "stripe-verification", "Stripe verification")


def contradiction_note(exc: Contradicted) -> str:
    return f"Refused: the request does not match Stripe (details.{exc.field} {exc.message})."


async def verify_later(ctx: JobContext, payload: dict[str, Any]) -> None:
    services = ctx.services
    approval_id = payload["approval_id"]
    try:
        approval = await services.approvals.get(None, approval_id)
    except NotFound:
        raise Park(f"no approval {approval_id}") from None
    if approval.status != ApprovalStatus.PENDING or (approval.stripe_facts or {}).get("status") == "verified":
        return  # decided meanwhile (execution verifies again), or verified already
    try:
        verification = await services.approvals.verifier.verify(approval.action, approval.details, ctx.clock(),
                                                                 fresh=True)
    except Contradicted as exc:
        log.warning("approval %s contradicts Stripe: %s", approval_id, exc)
        note = contradiction_note(exc)
        await ctx.db.write(lambda session: _reject(session, services, approval_id, note))
        return
    if verification is None:
        return
    if verification.status != "verified":
        if ctx.last_attempt:
            log.error("approval %s could not be verified against Stripe; it stays marked unverified", approval_id)
            return
        raise Retry(f"not verified yet: {verification.reason}")
    await ctx.db.write(lambda session: _store(session, services, approval_id, verification))


async def _pending(session: AsyncSession, approval_id: str) -> Approval | None:
    approval = await session.get(Approval, approval_id, with_for_update=True)
    return approval if approval is not None and approval.status == ApprovalStatus.PENDING else None


async def _reject(session: AsyncSession, services: "Container", approval_id: str, note: str) -> None:
    approval = await _pending(session, approval_id)
    if approval is not None:
        await state.finalize(session, services.effects, approval, ApprovalStatus.REJECTED, STRIPE_VERIFICATION,
                             note)


async def _store(session: AsyncSession, services: "Container", approval_id: str, verification: Verification) -> None:
    approval = await _pending(session, approval_id)
    if approval is None:
        return
    approval.stripe_facts = verification.document()
    if verification.fills:
        counted = usage.counted(approval)
        approval.details = {**approval.details, **verification.fills}
        usage.changed(session, approval, counted)  # Stripe's currency and customer: other counters
    await session.flush()
    audit.record(session, "approval.verified", approval_id=approval.id, connection_id=approval.connection_id,
                 actor=STRIPE_VERIFICATION.as_dict(), after=state.snapshot(approval),
                 detail={"warnings": verification.warnings, "filled": verification.fills or None})
    await services.effects.emit(session, approval, Event.VERIFIED)
