from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class AuditEvent(Base):
    """Append-only: every state change and refusal, with who, when, and the state before/after."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(60))
    approval_id: Mapped[str | None] = mapped_column(String(40), index=True)
    connection_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[dict[str, Any] | None]
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    detail: Mapped[dict[str, Any] | None]
