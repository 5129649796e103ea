from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base, utcnow

FINAL_STATUSES = ("approved", "rejected", "expired", "cancelled")
# Execution states after which nothing more will happen to an approved request.
SETTLED_EXECUTION = ("not_requested", "succeeded", "failed")


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("connection_id", "idempotency_key", name="uq_approvals_idempotency"),
        Index("ix_approvals_connection_status", "connection_id", "status"),
        Index("ix_approvals_status_expires", "status", "expires_at"),
        Index("ix_approvals_stripe_object_id", "stripe_object_id"),
        Index("ix_approvals_connection_created", "connection_id", "created_at"),  # per-minute limits
        Index("ix_approvals_created", "created_at"),  # the edge minute of a customer's running totals
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    surface: Mapped[str] = mapped_column(String(16), default="native")  # native | compat

    status: Mapped[str] = mapped_column(String(16), default="pending")
    action: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    justification: Mapped[str | None] = mapped_column(Text)
    modified_details: Mapped[dict[str, Any] | None]
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[dict[str, Any] | None]
    decided_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]

    rule: Mapped[str | None] = mapped_column(String(200))
    policy_version: Mapped[str | None] = mapped_column(String(80))
    approvers: Mapped[list[Any]] = mapped_column(default=list)
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)

    risk_level: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[str | None] = mapped_column(String(16))
    agent_name: Mapped[str | None] = mapped_column(String(200))
    request_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # riskScore, trace: shown, not interpreted
    callback_url: Mapped[str | None] = mapped_column(Text)

    execute: Mapped[bool] = mapped_column(Boolean, default=False)
    execution_status: Mapped[str] = mapped_column(String(16), default="not_requested")
    execution_result: Mapped[dict[str, Any] | None]
    execution_error: Mapped[dict[str, Any] | None]
    stripe_object_id: Mapped[str | None] = mapped_column(String(100))
    # What Stripe said about the request (`stripeFacts`): None when Stripe is not configured or the
    # action has nothing to verify.
    stripe_facts: Mapped[dict[str, Any] | None]

    slack_channel: Mapped[str | None] = mapped_column(String(40))
    slack_ts: Mapped[str | None] = mapped_column(String(40))

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Optimistic lock: two processes deciding at once cannot both write (StaleDataError).
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The content's revision: 1 as the agent asked, +1 on every reviewer's edit. Buttons and modals
    # name it (not `version`, which every vote bumps); only votes on the current one count.
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    decisions: Mapped[list["Decision"]] = relationship(
        back_populates="approval", order_by="Decision.id", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def effective_details(self) -> dict[str, Any]:
        return self.modified_details if self.modified_details is not None else self.details

    @property
    def is_settled(self) -> bool:
        """Nothing more will happen: what a synchronous hold waits for."""
        if self.status == "pending":
            return False
        return self.status != "approved" or self.execution_status in SETTLED_EXECUTION


class Decision(Base):
    """One reviewer's vote on one revision. Unique per revision and person (the Slack id, whichever
    surface it came from), so nobody counts twice toward a quorum."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("approval_id", "revision", "actor_id", name="uq_decisions_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))  # approve | reject
    actor_type: Mapped[str] = mapped_column(String(16))  # slack_user | operator | rule | system
    actor_id: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    edits: Mapped[dict[str, Any] | None]
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # For a decision made at the CLI: the OS user and host it was typed on ({"osUser", "host"}).
    via: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    approval: Mapped[Approval] = relationship(back_populates="decisions")
