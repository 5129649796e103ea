from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class StripeEvent(Base):
    """One Stripe event, recorded once: its id is the primary key, so a replay cannot be applied twice."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's evt_…
    type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(255))
    approval_id: Mapped[str | None] = mapped_column(ForeignKey("approvals.id"), index=True)
    # applied · unchanged (known object, nothing new or older than what we have) · ignored (not ours)
    outcome: Mapped[str] = mapped_column(String(16))
    # Stripe's own `created`, to keep a late event from undoing a newer one.
    created: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
