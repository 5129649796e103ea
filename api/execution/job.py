"""The execute job: run an approved request's Stripe call with the effective details, once.

Exactly once, whatever crashes: the Idempotency-Key is derived from the approval id and is the
same on every attempt, so a worker that dies after Stripe answered but before we recorded it
makes the next attempt receive Stripe's stored answer instead of a second refund. Recording is
first-writer-wins (`Decisions.record_execution` ignores a second outcome), so a slow worker whose
job was taken over cannot announce the execution twice.

What ends an execution, and what does not:
- Stripe's answer → `succeeded`, with the object's id and the whole object;
- a final refusal (card, invalid request, permission, authentication, idempotency, no key set) or
  details that no longer validate → `failed` at once, with type, code and message; never retried;
- Stripe unreachable, 5xx, 409, 429 → retried with back-off under the same key; `failed` only
  after the last attempt, saying the outcome may be unknown and which key to look up.

Before the first attempt the request is verified against Stripe again, afresh (a charge refunded
since the review is refused here, not at Stripe). Our own failures (a bug, the database) reach the
agent as a generic message; the detail goes to the log, never into `execution.error`.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from api.actions import ActionSpec, ExecutionOutcome, get_action
from api.approvals.enums import ApprovalStatus, ExecutionStatus
from api.connections.models import Connection
from api.errors import NotFound, ValidationFailed
from api.execution.gateway import StripeFinal, StripeRetryable
from api.facts.models import Contradicted
from api.outbox.models import Job
from api.outbox.registry import JobContext, Park, Retry

log = logging.getLogger(__name__)

# Execution states in which there is nothing left to do.
FINISHED = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.NOT_REQUESTED)
# Stripe keeps an idempotency key for at least 24 hours and may forget it after. A repeat sent later
# could make a second refund, so an execution interrupted that long ago is not sent again.
REPLAY_WINDOW = timedelta(hours=23)


def idempotency_key(approval_id: str) -> str:
    return f"cheqpoint-execute-{approval_id}"


def _invalid_details(exc: ValidationFailed) -> dict[str, Any]:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'][1:]) or 'details'}: {error['msg']}"
        for error in exc.errors or [])
    return {"type": "invalid_request_error", "code": "details_invalid",
            "message": f"{exc.detail}" + (f" ({problems})" if problems else "") + "; nothing was sent to Stripe"}


def _gave_up(message: str, key: str, attempts: int) -> str:
    # The request may have reached Stripe on an attempt whose answer was lost: the operator must
    # look before doing anything by hand, or the money could move twice.
    return (f"{message} — gave up after {attempts} attempts. Stripe may or may not have carried it out: "
            f"look for Idempotency-Key {key} in Stripe's request logs before acting by hand")


async def execute_approval(ctx: JobContext, payload: dict[str, Any]) -> None:
    services = ctx.services
    approval_id = payload["approval_id"]
    try:
        approval = await services.approvals.get(None, approval_id)
    except NotFound:
        raise Park(f"no approval {approval_id}") from None
    if approval.status != ApprovalStatus.APPROVED or approval.execution_status in FINISHED:
        return  # already finished by an earlier attempt, or nothing to run
    if approval.execution_status != ExecutionStatus.RUNNING and await _connection_revoked(ctx, approval.connection_id):
        await _fail(ctx, approval_id, REVOKED_ERROR)
        return
    try:
        await _execute(ctx, approval)
    except (Retry, Park):
        raise
    except Exception:
        # Our own failure (a bug, the database): retried like any job, but on the last attempt the
        # approval must not be left `running` for ever.
        log.exception("execution of %s failed inside Cheqpoint (attempt %s)", approval_id, ctx.attempt)
        if ctx.last_attempt:
            await _fail(ctx, approval_id, {
                "type": "api_error", "code": "execution_error",
                "message": _gave_up("an internal error interrupted the execution", idempotency_key(approval_id),
                                    ctx.attempt)})
        raise


# An approval of a revoked Connection is not sent to Stripe unless an earlier attempt already began
# (then only the idempotent repeat can tell what happened, so it goes on).
REVOKED_ERROR = {"type": "invalid_request_error", "code": "connection_revoked",
                 "message": ("the Connection that made this request was revoked before it ran; "
                             "nothing was sent to Stripe")}


async def _connection_revoked(ctx: JobContext, connection_id: str) -> bool:
    async with ctx.db.read() as session:
        connection = await session.get(Connection, connection_id)
    return connection is None or connection.revoked_at is not None


async def _fail(ctx: JobContext, approval_id: str, error: dict[str, Any]) -> None:
    await ctx.services.decisions.record_execution(approval_id, status=ExecutionStatus.FAILED, error=error)


async def _earlier_outcome(ctx: JobContext, spec: ActionSpec, approval: Any) -> ExecutionOutcome | None:
    """What an earlier attempt did, when Stripe refuses to do it again; None when unknown."""
    try:
        return await spec.earlier_outcome(ctx.services.gateway, approval.effective_details)
    except StripeRetryable as exc:
        if ctx.last_attempt:
            return None
        raise Retry(f"could not check what an earlier attempt did: {exc}") from exc
    except StripeFinal:
        return None


async def _refused_by_stripe_facts(ctx: JobContext, approval: Any) -> dict[str, Any] | None:
    """Verify the request as it will be executed, reading Stripe afresh; the error to record when
    Stripe now contradicts it (or could not confirm it by the last attempt), else None."""
    verifier = ctx.services.approvals.verifier
    try:
        verification = await verifier.verify(approval.action, approval.effective_details, ctx.clock(), fresh=True)
    except Contradicted as exc:
        log.warning("execution of %s refused: Stripe contradicts it: %s", approval.id, exc)
        return {"type": "invalid_request_error", "code": "stripe_facts_changed",
                "message": f"Stripe no longer matches the request (details.{exc.field} {exc.message}); "
                           "nothing was sent to Stripe"}
    if verification is None or verification.status == "verified":
        return None
    if not ctx.last_attempt:
        raise Retry(f"could not verify against Stripe before executing: {verification.reason}")
    return {"type": "api_error", "code": "not_verified",
            "message": "Stripe could not be asked to confirm the request before executing it; "
                       "nothing was sent to Stripe"}


async def _job_created_at(ctx: JobContext) -> datetime | None:
    """When the execution was queued: no attempt of it can have reached Stripe before."""
    async with ctx.db.read() as session:
        return await session.scalar(select(Job.created_at).where(Job.id == ctx.job_id))


async def _execute(ctx: JobContext, approval: Any) -> None:
    services, approval_id = ctx.services, approval.id
    spec = get_action(approval.action)
    if spec is None:
        await _fail(ctx, approval_id, {"type": "invalid_request_error", "code": "unknown_action",
                                       "message": f"{approval.action} is not in the action catalogue"})
        return
    # `running` already: an earlier attempt began, and may have reached Stripe.
    repeated = approval.execution_status == ExecutionStatus.RUNNING
    if not repeated:
        # Only before the first attempt: once one may have reached Stripe, our own refund would
        # read as "already refunded" and the idempotency key must replay it instead.
        try:
            spec.validate_details(approval.effective_details)
        except ValidationFailed as exc:  # nothing to verify in details that no longer validate
            await _fail(ctx, approval_id, _invalid_details(exc))
            return
        refusal = await _refused_by_stripe_facts(ctx, approval)
        if refusal is not None:
            await _fail(ctx, approval_id, refusal)
            return
        await services.decisions.record_execution(approval_id, status=ExecutionStatus.RUNNING)
    key = idempotency_key(approval_id)
    if repeated:
        started = await _job_created_at(ctx)
        if started is not None and ctx.clock() - started > REPLAY_WINDOW:
            log.error("execution of %s was interrupted over %s ago; not sent again", approval_id, REPLAY_WINDOW)
            await _fail(ctx, approval_id, {"type": "api_error", "code": "outcome_unknown", "message": (
                f"the execution was interrupted and cannot safely be repeated now that Stripe may have "
                f"forgotten its Idempotency-Key {key}: look the key up in Stripe's request logs to see "
                "whether it was carried out before acting by hand")})
            return
    try:
        outcome = await spec.execute(services.gateway, approval.effective_details, idempotency_key=key)
    except ValidationFailed as exc:
        log.warning("execution of %s refused before Stripe: %s", approval_id, exc.errors or exc.detail)
        await _fail(ctx, approval_id, _invalid_details(exc))
        return
    except StripeFinal as exc:
        recovered = await _earlier_outcome(ctx, spec, approval) if repeated else None
        if recovered is None:
            log.warning("execution of %s failed: %r", approval_id, exc)
            await _fail(ctx, approval_id, exc.as_error())
            return
        log.info("execution of %s was carried out by an earlier attempt: %s", approval_id, exc.message)
        outcome = recovered
    except StripeRetryable as exc:
        if not ctx.last_attempt:
            raise Retry(str(exc)) from exc
        log.error("execution of %s gave up after %s attempts: %s", approval_id, ctx.attempt, exc)
        await _fail(ctx, approval_id, {**exc.as_error(), "message": _gave_up(exc.message, key, ctx.attempt)})
        return
    await services.decisions.record_execution(approval_id, status=ExecutionStatus.SUCCEEDED,
                                              stripe_object_id=outcome.stripe_object_id, result=outcome.result)
