"""The `callback.deliver` job: one attempt to deliver one stored callback, recorded either way.

The webhook-id and the body were fixed when the event happened, so every attempt (and every
redelivery) sends the same message under the same id and receivers can drop duplicates. Only the
signature's timestamp is fresh, because receivers refuse old ones.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.callbacks.delivery import AttemptResult, next_delay, post_callback
from api.callbacks.enums import DeliveryStatus
from api.callbacks.models import CallbackAttempt, CallbackDelivery
from api.callbacks.signing import COMPAT_SIGNATURE_HEADER, compat_signature, sign
from api.callbacks.ssrf import Resolver, UnsafeCallbackUrl, check_callback_url
from api.connections.models import Connection
from api.connections.revocation import queued_before_revocation
from api.outbox.registry import JobContext, Park, Retry

log = logging.getLogger(__name__)

# A name that does not resolve now may resolve in a minute (a DNS blip, a deploy in progress): that
# is a failed attempt like a refused connection. Every other refusal means the URL is unsafe.
_TRANSIENT_REFUSAL = "could not be resolved"


async def deliver_callback(ctx: JobContext, payload: dict[str, Any]) -> None:
    delivery_id = payload["delivery_id"]
    async with ctx.db.read() as session:
        delivery = await session.get(CallbackDelivery, delivery_id)
        connection = await session.get(Connection, delivery.connection_id) if delivery else None
    if delivery is None or connection is None:
        raise Park(f"callback delivery {delivery_id} is gone")
    # A worker that died after recording the outcome but before closing the job runs it again.
    if delivery.status == DeliveryStatus.DELIVERED:
        return
    if delivery.status == DeliveryStatus.FAILED:
        raise Park(f"callback delivery {delivery_id} already failed: {delivery.last_error}")
    if queued_before_revocation(connection, delivery.created_at):
        # Settled, not a fault: the job ends quietly and the delivery says why it was not sent.
        await _not_sent(ctx, delivery_id, "not sent: the Connection was revoked before it was delivered")
        return

    try:
        # Again at every attempt: DNS may have changed since intake (rebinding), and so may the settings.
        target = await check_callback_url(delivery.url, allow_private=ctx.settings.callback_allow_private,
                                          resolver=_resolver(ctx))
    except UnsafeCallbackUrl as exc:
        result = AttemptResult(ok=False, status_code=None, error=exc.reason, duration_ms=0, retry_after=None)
        if _TRANSIENT_REFUSAL in exc.reason:
            await _finish(ctx, delivery_id, result)
        else:
            await _record(ctx, delivery_id, result, final=True)
            raise Park(f"callback URL refused at delivery: {exc.reason}") from None
        return

    body = delivery.body.encode("utf-8")
    # The receiver compares the timestamp with its own clock (Standard Webhooks allows ±5 minutes), so
    # it is always the wall clock, never the scheduling clock the service (and its tests) may move.
    # During a secret rotation's grace both secrets sign (the current one first); the grace is measured
    # on the service's clock, like every other deadline it keeps.
    current, *previous = connection.signing_secrets(ctx.clock())
    headers = sign(current, delivery.id, datetime.now(UTC), body, previous=previous)
    if delivery.compat_signature:  # Cheqpoint's SDKs check one signature: the current secret's
        headers[COMPAT_SIGNATURE_HEADER] = compat_signature(current, body)
    result = await post_callback(ctx.http, target, body, headers)
    await _finish(ctx, delivery_id, result)


def _resolver(ctx: JobContext) -> Resolver | None:
    """The container's resolver (a test's), else None: the system's."""
    return ctx.services.callback_resolver


async def _finish(ctx: JobContext, delivery_id: str, result: AttemptResult) -> None:
    """Record the attempt, then end the job, schedule the next attempt, or give up."""
    if result.ok:
        await _record(ctx, delivery_id, result, final=False)
        return
    delay = next_delay(ctx.attempt, retry_after=result.retry_after)
    await _record(ctx, delivery_id, result, final=delay is None)
    if delay is None:
        raise Park(f"callback not delivered after {ctx.attempt} attempts: {result.error}")
    raise Retry(result.error or "callback not delivered", delay=delay)


async def _not_sent(ctx: JobContext, delivery_id: str, reason: str) -> None:
    async def write(session: AsyncSession) -> None:
        delivery = await session.get(CallbackDelivery, delivery_id, with_for_update=True)
        assert delivery is not None
        delivery.status, delivery.last_error = DeliveryStatus.FAILED, reason

    await ctx.db.write(write)


async def _record(ctx: JobContext, delivery_id: str, result: AttemptResult, *, final: bool) -> None:
    """One transaction: the attempt row and the delivery's summary always agree."""
    now = ctx.clock()

    async def write(session: AsyncSession) -> None:
        delivery = await session.get(CallbackDelivery, delivery_id, with_for_update=True)
        assert delivery is not None
        delivery.attempts += 1
        session.add(CallbackAttempt(delivery_id=delivery_id, attempt=delivery.attempts, at=now,
                                    status_code=result.status_code, error=result.error,
                                    duration_ms=result.duration_ms,
                                    extra={"job_id": ctx.job_id, "job_attempt": ctx.attempt}))
        if result.ok:
            delivery.status, delivery.last_error, delivery.delivered_at = DeliveryStatus.DELIVERED, None, now
        else:
            delivery.status = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
            delivery.last_error = result.error

    await ctx.db.write(write)
    if not result.ok:
        log.info("callback %s attempt %s failed: %s", delivery_id, ctx.attempt, result.error)
