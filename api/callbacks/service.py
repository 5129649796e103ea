"""Operators' view of callback deliveries, and redelivery."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.callbacks.delivery import MAX_ATTEMPTS
from api.callbacks.enums import DeliveryStatus
from api.callbacks.models import CallbackAttempt, CallbackDelivery
from api.db import Database
from api.errors import Conflict, NotFound
from api.outbox.kinds import JobKind
from api.outbox.service import enqueue


async def list_deliveries(db: Database, *, failed_only: bool = False, approval_id: str | None = None,
                          limit: int = 50) -> list[CallbackDelivery]:
    """Newest first."""
    query = select(CallbackDelivery).order_by(CallbackDelivery.created_at.desc(), CallbackDelivery.id).limit(limit)
    if failed_only:
        query = query.where(CallbackDelivery.status == DeliveryStatus.FAILED)
    if approval_id is not None:
        query = query.where(CallbackDelivery.approval_id == approval_id)
    async with db.read() as session:
        return list((await session.scalars(query)).all())


async def get_delivery(db: Database, delivery_id: str) -> tuple[CallbackDelivery, list[CallbackAttempt]]:
    async with db.read() as session:
        delivery = await session.get(CallbackDelivery, delivery_id)
        if delivery is None:
            raise NotFound(f"no callback delivery {delivery_id}")
        attempts = (await session.scalars(select(CallbackAttempt).where(CallbackAttempt.delivery_id == delivery_id)
                                          .order_by(CallbackAttempt.attempt))).all()
    return delivery, list(attempts)


async def redeliver(db: Database, delivery_id: str) -> CallbackDelivery:
    """Send a failed or delivered callback again, under the same webhook-id and with the same body.

    A delivery still pending is refused: its job is already trying, and a second job would only
    race it. The new job gets the full retry schedule again.
    """
    async def write(session: AsyncSession) -> CallbackDelivery:
        delivery = await session.get(CallbackDelivery, delivery_id, with_for_update=True)
        if delivery is None:
            raise NotFound(f"no callback delivery {delivery_id}")
        if delivery.status == DeliveryStatus.PENDING:
            raise Conflict(f"callback delivery {delivery_id} is still being delivered")
        delivery.status = DeliveryStatus.PENDING
        # The delivery id alone keys the first job; attempts so far make each redelivery's key unique.
        await enqueue(session, JobKind.DELIVER_CALLBACK, {"delivery_id": delivery.id},
                      key=f"{delivery.id}:redeliver:{delivery.attempts}", max_attempts=MAX_ATTEMPTS)
        return delivery

    return await db.write(write)
