"""The execute job: run an approved request's Stripe call with the effective details, once.

Exactly once, whatever crashes: the Idempotency-Key is derived from the approval id and is the
same on every attempt, so a worker that dies after Stripe answered but before we recorded it
makes the next attempt receive Stripe's stored answer instead of a second refund.
"""

import logging
from typing import Any

from api.actions import get_action
from api.execution.gateway import StripeFinal, StripeRetryable
from api.outbox.registry import JobContext, Retry

log = logging.getLogger(__name__)


def idempotency_key(approval_id: str) -> str:
    return f"cheqpoint-execute-{approval_id}"


async def execute_approval(ctx: JobContext, payload: dict[str, Any]) -> None:
    services = ctx.services
    approval_id = payload["approval_id"]
    approval = await services.approvals.get(None, approval_id)
    if approval.status != "approved" or approval.execution_status in ("succeeded", "failed", "not_requested"):
        return  # already finished by an earlier attempt, or nothing to run
    spec = get_action(approval.action)
    if spec is None:
        await services.decisions.record_execution(approval_id, status="failed", error={
            "type": "invalid_request_error", "code": "unknown_action",
            "message": f"{approval.action} is not in the action catalogue"})
        return
    if approval.execution_status == "queued":
        await services.decisions.record_execution(approval_id, status="running")
    try:
        outcome = await spec.execute(services.gateway, approval.effective_details,
                                     idempotency_key=idempotency_key(approval_id))
    except StripeFinal as exc:
        log.warning("execution of %s failed: %r", approval_id, exc)
        await services.decisions.record_execution(approval_id, status="failed", error=exc.as_error())
        return
    except StripeRetryable as exc:
        if ctx.last_attempt:
            await services.decisions.record_execution(approval_id, status="failed", error=exc.as_error())
            return
        raise Retry(str(exc)) from exc
    await services.decisions.record_execution(approval_id, status="succeeded",
                                              stripe_object_id=outcome.stripe_object_id, result=outcome.result)
