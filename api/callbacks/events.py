"""Turns an approval's final events into callback deliveries (CONTRACT §4, §3b).

Runs inside the transaction that decided the approval, so the delivery row and its outbox job
commit with the decision or not at all: no decision without its callback, no callback for a
decision that rolled back. Nothing here touches the network.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.events import Event
from api.approvals.models import Approval
from api.approvals.schemas import approval_out, execution_out
from api.callbacks.delivery import MAX_ATTEMPTS
from api.callbacks.enums import DeliveryStatus
from api.callbacks.models import CallbackDelivery
from api.callbacks.signing import new_message_id
from api.db import utcnow
from api.outbox.kinds import JobKind
from api.outbox.service import enqueue
from api.strict_input import dumps as strict_json_dumps

JOB_KIND = JobKind.DELIVER_CALLBACK

# The events an agent is told about: each final decision, the end of the execution, and each later
# outcome Stripe reports for it (one per Stripe event that changed something).
CALLBACK_EVENTS = frozenset({"approved", "rejected", "expired", "cancelled", "executed", "execution_failed",
                             "execution_updated"})


def event_type(event: str) -> str:
    return f"approval.{event}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def native_body(approval: Approval, event: str, now: datetime) -> dict[str, Any]:
    return {"type": event_type(event), "timestamp": _iso(now), "data": approval_out(approval)}


def compat_body(approval: Approval, event: str) -> dict[str, Any]:
    """What Cheqpoint-compatible clients expect: their `GET /api/approvals/{id}` object plus three keys."""
    # Imported here: the compatible API is an optional neighbour, and this module must load without it.
    from api.compat.schemas import compat_view

    return {**compat_view(approval), "approvalId": approval.id, "execution": execution_out(approval),
            "type": event_type(event)}


def encode(body: dict[str, Any]) -> str:
    # Stored as text and signed byte for byte; every retry sends exactly these bytes. Strict JSON: a
    # non-finite number stored before intake refused them goes out as null.
    return strict_json_dumps(body)


async def on_approval_event(session: AsyncSession, approval: Approval, event: Event) -> None:
    """The effects subscriber: one delivery, with its own stable webhook-id, per event that matters."""
    if event not in CALLBACK_EVENTS or not approval.callback_url:
        return
    now = session.info.get("clock", utcnow)()
    compat = approval.surface == "compat"
    body = compat_body(approval, event) if compat else native_body(approval, event, now)
    delivery = CallbackDelivery(
        id=new_message_id(), approval_id=approval.id, connection_id=approval.connection_id,
        event_type=event_type(event), url=approval.callback_url, body=encode(body), compat_signature=compat,
        status=DeliveryStatus.PENDING, attempts=0, created_at=now)
    session.add(delivery)
    await session.flush()
    await enqueue(session, JobKind.DELIVER_CALLBACK, {"delivery_id": delivery.id}, key=delivery.id,
                  max_attempts=MAX_ATTEMPTS)
