"""Requests held open right now, one row each, so every replica counts the same holds."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base


class Hold(Base):
    __tablename__ = "connection_holds"
    __table_args__ = (Index("ix_connection_holds_connection_expires", "connection_id", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    started_at: Mapped[datetime]
    # A process that dies mid-hold cannot delete its row: past this moment the row counts for nothing.
    expires_at: Mapped[datetime]
