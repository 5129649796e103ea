from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class AuditEvent(Base):
    """Append-only: every state change and refusal, with who, when, and the state before/after.

    Entries form a hash chain (`api.audit.chain`): `seq` counts up from 1 without gaps, `prev_hash` is
    the previous entry's `hash`, and `hash` covers this entry's fields and `prev_hash`, so a changed,
    removed or inserted row breaks the chain at that point.
    """

    __tablename__ = "audit_events"

    # Made here, not by the database, so a group commit inserts many in one statement.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(60))
    approval_id: Mapped[str | None] = mapped_column(String(40), index=True)
    connection_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[dict[str, Any] | None]
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    detail: Mapped[dict[str, Any] | None]
    seq: Mapped[int] = mapped_column(index=True, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
