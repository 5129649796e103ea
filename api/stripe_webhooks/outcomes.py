"""What a Stripe event says about an execution we carried out, and whether it is news.

Pure functions over Stripe's JSON: no database, no network. Stripe delivers events at least once
and in no particular order, so an event only moves an execution *forward*: each object status has
a rank, and an event whose status ranks below what we already hold is stale. Between statuses of
the same rank (a refund `failed`, then `canceled`) the event created later wins.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from api.actions import ACTIONS as CATALOGUE
from api.approvals.enums import ExecutionStatus


class ObjectKind(StrEnum):
    REFUND = "refund"
    PAYOUT = "payout"
    DISPUTE = "dispute"


# The event types acted on; `docs/stripe-webhooks.md` lists them for the Stripe dashboard.
HANDLED_EVENTS: dict[str, ObjectKind] = {
    "refund.updated": ObjectKind.REFUND,
    "refund.failed": ObjectKind.REFUND,
    "payout.failed": ObjectKind.PAYOUT,
    "payout.paid": ObjectKind.PAYOUT,
    "charge.dispute.closed": ObjectKind.DISPUTE,
}

# Which catalogue actions produce each kind of object (CONTRACT §5): each spec names its object.
ACTIONS: dict[ObjectKind, tuple[str, ...]] = {
    kind: tuple(name for name, spec in CATALOGUE.items() if spec.stripe_object == kind) for kind in ObjectKind}

# Later is higher. A payout can fail even after it was paid, so failure outranks `paid`.
_RANKS: dict[ObjectKind, dict[str, int]] = {
    ObjectKind.REFUND: {"pending": 0, "requires_action": 0, "succeeded": 1, "failed": 2, "canceled": 2},
    ObjectKind.PAYOUT: {"pending": 0, "in_transit": 0, "paid": 1, "failed": 2, "canceled": 2},
    ObjectKind.DISPUTE: {"warning_needs_response": 0, "needs_response": 0, "warning_under_review": 0,
                         "under_review": 0, "won": 1, "lost": 1, "warning_closed": 1, "charge_refunded": 1},
}
_FAILED = frozenset({"failed", "canceled"})


class MalformedEvent(ValueError):
    """The body is JSON but not a Stripe event we can read."""


@dataclass(frozen=True)
class StripeNotice:
    """The parts of a Stripe event that matter here."""

    id: str
    type: str
    created: datetime
    livemode: bool
    object: dict[str, Any]

    @property
    def kind(self) -> ObjectKind | None:
        return HANDLED_EVENTS.get(self.type)

    @property
    def object_id(self) -> str | None:
        value = self.object.get("id")
        return value if isinstance(value, str) else None

    @property
    def object_status(self) -> str | None:
        value = self.object.get("status")
        return value if isinstance(value, str) else None


def parse_event(event: object) -> StripeNotice:
    if not isinstance(event, dict) or event.get("object") != "event":
        raise MalformedEvent("the body is not a Stripe event object")
    ident, kind, created = event.get("id"), event.get("type"), event.get("created")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(ident, str) or not ident or len(ident) > 255:
        raise MalformedEvent("the event has no usable id")
    if not isinstance(kind, str) or not kind or len(kind) > 100:
        raise MalformedEvent("the event has no usable type")
    if isinstance(created, bool) or not isinstance(created, int) or not 0 <= created < 2**40:
        raise MalformedEvent("the event's created is not a unix time")
    if not isinstance(obj, dict):
        raise MalformedEvent("the event has no data.object")
    return StripeNotice(id=ident, type=kind, created=datetime.fromtimestamp(created, UTC),
                        livemode=event.get("livemode") is True, object=obj)


@dataclass(frozen=True)
class LaterOutcome:
    """What the execution becomes: its status (succeeded | failed), the object, and the error if any."""

    status: ExecutionStatus
    result: dict[str, Any]
    error: dict[str, Any] | None


def later_outcome(kind: ObjectKind, obj: dict[str, Any]) -> LaterOutcome:
    status = obj.get("status")
    if kind is ObjectKind.REFUND and status in _FAILED:
        reason = obj.get("failure_reason") or "unknown"
        return LaterOutcome(ExecutionStatus.FAILED, obj, {
            "type": "refund_failed", "code": reason,
            "message": f"Stripe reports the refund {status} after it was created: {_words(reason)}"})
    if kind is ObjectKind.PAYOUT and status in _FAILED:
        code = obj.get("failure_code") or "unknown"
        message = obj.get("failure_message") or _words(code)
        return LaterOutcome(ExecutionStatus.FAILED, obj, {
            "type": "payout_failed", "code": code,
            "message": f"Stripe reports the payout {status} after it was created: {message}"})
    return LaterOutcome(ExecutionStatus.SUCCEEDED, obj, None)


def is_news(kind: ObjectKind, held_status: str | None, new_status: str | None, created: datetime,
            last_applied: datetime | None) -> bool:
    """Whether an event with `new_status` moves the execution on from `held_status`."""
    ranks = _RANKS[kind]
    if new_status not in ranks:
        return False  # a status we do not know how to place: never guess a direction
    held = ranks.get(held_status or "", -1)
    if ranks[new_status] != held:
        return ranks[new_status] > held
    return new_status != held_status and (last_applied is None or created > last_applied)


def _words(code: str) -> str:
    return code.replace("_", " ")
