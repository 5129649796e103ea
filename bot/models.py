"""Slack's own tables: where each review message is, digests (one message listing many requests)
and claims ("I'm on it").

They belong to the Slack adapter, not to the approvals core: the core never reads them.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class SlackMessage(Base):
    """Where a request's own review message is in Slack. A row exists once the message is posted
    (or an earlier post was found and adopted); a request listed only in a digest has none."""

    __tablename__ = "slack_messages"

    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    ts: Mapped[str] = mapped_column(String(40))
    # NULL for messages posted before this table existed (the approvals row kept no time for them).
    posted_at: Mapped[datetime | None]


class Digest(Base):
    """One message in a channel listing the waiting requests of one group (Connection, action, rule)."""

    __tablename__ = "slack_digests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(300), index=True)
    # Equal to group_key while the digest takes new items, NULL once closed: the unique constraint
    # lets only one open digest exist per group, across every replica and worker.
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(40))
    ts: Mapped[str | None] = mapped_column(String(40))
    connection_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(100))
    rule: Mapped[str | None] = mapped_column(String(200))
    page: Mapped[int] = mapped_column(Integer, default=0)
    # `changes` counts what happened to the digest's items; `rendered_changes` is the count its
    # message last showed, so a burst of decisions costs one chat.update, not one each.
    changes: Mapped[int] = mapped_column(Integer, default=0)
    rendered_changes: Mapped[int] = mapped_column(Integer, default=-1)
    # The render's number, carried by the bulk button: a click names the picture it was shown.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DigestItem(Base):
    __tablename__ = "slack_digest_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest_id: Mapped[str] = mapped_column(ForeignKey("slack_digests.id"), index=True)
    # Unique: a request is listed in at most one digest.
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), unique=True)
    # The request's revision the message shows, and the render that first showed it (None: not yet shown).
    shown_revision: Mapped[int | None] = mapped_column(Integer)
    shown_generation: Mapped[int | None] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class Claim(Base):
    """A reviewer said "I'm on it" for a request."""

    __tablename__ = "slack_claims"
    __table_args__ = (UniqueConstraint("approval_id", "user_id", name="uq_slack_claims_approval_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(40))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
