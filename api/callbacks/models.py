from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.callbacks.enums import DeliveryStatus
from api.db import Base, EnumText, utcnow


class CallbackDelivery(Base):
    """One event for one approval's callbackUrl. Its id is the stable `webhook-id`."""

    __tablename__ = "callback_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_…
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)  # the exact bytes signed, so every retry is identical
    compat_signature: Mapped[bool] = mapped_column(default=False)
    status: Mapped[DeliveryStatus] = mapped_column(EnumText(DeliveryStatus), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class CallbackAttempt(Base):
    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("callback_deliveries.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[dict[str, Any] | None]
