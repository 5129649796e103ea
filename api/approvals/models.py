from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, configure_mappers, mapped_column, relationship

from api.approvals.enums import SETTLED_EXECUTION, ApprovalStatus, ExecutionStatus, Verdict
from api.db import Base, EnumText, utcnow


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

    # Typed columns over the same VARCHAR(16) as before (EnumText): no migration, rows unchanged.
    status: Mapped[ApprovalStatus] = mapped_column(EnumText(ApprovalStatus), default=ApprovalStatus.PENDING)
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
    execution_status: Mapped[ExecutionStatus] = mapped_column(EnumText(ExecutionStatus),
                                                              default=ExecutionStatus.NOT_REQUESTED)
    execution_result: Mapped[dict[str, Any] | None]
    execution_error: Mapped[dict[str, Any] | None]
    stripe_object_id: Mapped[str | None] = mapped_column(String(100))
    # What Stripe said about the request (`stripeFacts`): None when Stripe is not configured or the
    # action has nothing to verify.
    stripe_facts: Mapped[dict[str, Any] | None]

    # Where a surface shows the request (Slack's channel and ts) lives in that surface's own tables.

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
        if self.status == ApprovalStatus.PENDING:
            return False
        return self.status != ApprovalStatus.APPROVED or self.execution_status in SETTLED_EXECUTION


# What a new approval holds besides what intake fills in. The columns left empty are not named at
# all: None in a JSON column would store JSON `null`, where the ORM (which leaves unset columns out
# of its INSERT) stores SQL NULL; a Core row (`api.deferred`) leaves them out the same way.
NEW_ROW: dict[str, Any] = {"version": 1, "revision": 1}


# The attributes such a row reads back with: everything NEW_ROW leaves out is empty.
_EMPTY = {"modified_details": None, "decision_note": None, "decided_by": None, "decided_at": None,
          "execution_result": None, "execution_error": None, "stripe_object_id": None}


def unattached(values: dict[str, Any]) -> "Approval":
    """The Approval object of a new row inserted with Core (`api.deferred`), for the response, the
    holds and the effects' subscribers to read; never added to a session. Its values are put in
    place as a loaded row's are, without the ORM's per-attribute events, which cost intake as much
    as everything else it does in the writer together."""
    mapper = Approval.__mapper__
    if not mapper.configured:  # asked first: configure_mappers() walks every registry even when done
        configure_mappers()  # what the constructor would do first
    approval: Approval = mapper.class_manager.new_instance()
    approval.__dict__.update(values, **NEW_ROW, **_EMPTY, decisions=[])
    return approval


def as_row(values: dict[str, Any]) -> dict[str, Any]:
    """A new approval's attribute values as an INSERT's row: column names, and NEW_ROW's defaults."""
    row = {**values, **NEW_ROW}
    row["metadata"] = row.pop("request_metadata")
    return row


class Decision(Base):
    """One reviewer's vote on one revision. Unique per revision and person (the Slack id, whichever
    surface it came from), so nobody counts twice toward a quorum."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("approval_id", "revision", "actor_id", name="uq_decisions_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), index=True)
    verdict: Mapped[Verdict] = mapped_column(EnumText(Verdict))
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
