"""Records each Stripe event once and applies what it says to the approval it concerns.

One transaction per event: the event's row (its id is the primary key), the approval's change, its
audit entry and the outbox jobs its `execution_updated` effect enqueues commit together or not at
all. The event row is inserted first, so a second delivery of the same event running at the same
moment waits on the first one's row and then fails on the unique key, and is answered as a replay;
two different events about one approval queue on the approval's row lock.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals import state
from api.approvals.effects import Effects
from api.approvals.enums import ExecutionStatus
from api.approvals.models import Approval
from api.db import Database
from api.stripe_webhooks.models import StripeEvent
from api.stripe_webhooks.outcomes import ACTIONS, ObjectKind, StripeNotice, is_news, later_outcome

log = logging.getLogger(__name__)

# Executions that have ended; a later outcome only ever follows one of these.
_ENDED = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)


class Outcome(StrEnum):
    APPLIED = "applied"          # the approval's execution changed
    UNCHANGED = "unchanged"      # ours, but nothing new (already known, or older than what we hold)
    IGNORED = "ignored"          # an object we never touched, or another mode's event
    DUPLICATE = "duplicate"      # this event id was received before
    UNHANDLED = "unhandled"      # a type we do not act on; not recorded


_RECEIVED = "received"  # the row's outcome until the event has been looked at, in the same transaction


class StripeWebhooks:
    def __init__(self, db: Database, effects: Effects, *, clock: Callable[[], datetime],
                 livemode: bool | None) -> None:
        self.db = db
        self.effects = effects
        self.clock = clock
        # The mode of our Stripe key (None when no key is set): events from the other mode are not ours.
        self.livemode = livemode

    async def receive(self, notice: StripeNotice) -> Outcome:
        kind = notice.kind
        if kind is None:
            log.info("Stripe event %s of type %s is not one we act on; ignored", notice.id, notice.type)
            return Outcome.UNHANDLED
        try:
            outcome = await self.db.write(lambda session: self._record(session, notice, kind))
        except IntegrityError:
            # Another delivery of this event committed first (the primary key refused ours).
            if not await self._seen(notice.id):
                raise
            outcome = Outcome.DUPLICATE
        if outcome is Outcome.IGNORED:
            log.warning("Stripe event %s (%s) concerns %s, which no approval of ours executed; ignored",
                        notice.id, notice.type, notice.object_id)
        else:
            log.info("Stripe event %s (%s) for %s: %s", notice.id, notice.type, notice.object_id, outcome)
        return outcome

    async def _seen(self, event_id: str) -> bool:
        async with self.db.read() as session:
            return await session.get(StripeEvent, event_id) is not None

    async def _record(self, session: AsyncSession, notice: StripeNotice, kind: ObjectKind) -> Outcome:
        if await session.get(StripeEvent, notice.id) is not None:
            return Outcome.DUPLICATE
        row = StripeEvent(id=notice.id, type=notice.type, object_id=notice.object_id, outcome=_RECEIVED,
                          created=notice.created, received_at=self.clock())
        session.add(row)
        await session.flush()  # claims the event id before anything else is read or locked

        approval = None
        if self.livemode is None or notice.livemode == self.livemode:
            approval = await self._approval_for(session, kind, notice.object_id)
        if approval is None:
            row.outcome = Outcome.IGNORED
            return Outcome.IGNORED
        row.approval_id = approval.id
        row.outcome = await self._apply(session, approval, notice, kind)
        await session.flush()
        return Outcome(row.outcome)

    async def _approval_for(self, session: AsyncSession, kind: ObjectKind, object_id: str | None) -> Approval | None:
        """The approval whose execution created (or, for disputes, last acted on) the object; locked."""
        if not object_id:
            return None
        query = (select(Approval)
                 .where(Approval.stripe_object_id == object_id, Approval.action.in_(ACTIONS[kind]),
                        Approval.execution_status.in_(_ENDED))
                 .order_by(Approval.id.desc()).limit(1).with_for_update())
        approval = await session.scalar(query)
        if approval is not None and kind is ObjectKind.DISPUTE \
                and approval.effective_details.get("dispute_id") != object_id:
            return None
        return approval

    async def _apply(self, session: AsyncSession, approval: Approval, notice: StripeNotice,
                     kind: ObjectKind) -> Outcome:
        held = (approval.execution_result or {}).get("status")
        last_applied = await session.scalar(
            select(func.max(StripeEvent.created))
            .where(StripeEvent.approval_id == approval.id, StripeEvent.outcome == Outcome.APPLIED))
        if not is_news(kind, held, notice.object_status, notice.created, last_applied):
            return Outcome.UNCHANGED
        change = later_outcome(kind, notice.object)
        actor = {"type": "system", "id": "stripe", "event": notice.id}
        await state.record_later_outcome(session, self.effects, approval, status=change.status,
                                         result=change.result, error=change.error, actor=actor)
        return Outcome.APPLIED
