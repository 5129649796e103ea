"""Typed results: the approval object of the native API (CONTRACT §3) as frozen dataclasses.

Each keeps the JSON it was read from in `raw`, so fields added to the API later are reachable
before this SDK names them.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["pending", "approved", "rejected", "expired", "cancelled"]
ExecutionStatus = Literal["not_requested", "queued", "running", "succeeded", "failed"]
RiskLevel = Literal["low", "medium", "high", "critical"]
Priority = Literal["low", "normal", "urgent"]

# Execution states after which nothing more happens to an approved request.
_EXECUTION_DONE = ("not_requested", "succeeded", "failed")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class Actor:
    """Who decided: a Slack user, an operator, a policy rule, or the system (expiry, cancellation)."""

    type: str
    id: str
    name: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Actor | None":
        return cls(data["type"], data["id"], data.get("name")) if data else None


@dataclass(frozen=True)
class Vote:
    by: Actor
    at: datetime | None
    note: str | None


@dataclass(frozen=True)
class Execution:
    """The Stripe call the service made (or will make) for an approved request."""

    status: ExecutionStatus
    stripe_object_id: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Execution":
        data = data or {}
        return cls(data.get("status", "not_requested"), data.get("stripeObjectId"), data.get("result"),
                   data.get("error"))


@dataclass(frozen=True)
class Approval:
    approval_id: str
    status: Status
    action: str
    summary: str
    details: dict[str, Any]
    modified_details: dict[str, Any] | None
    changes: dict[str, Any]
    decision_note: str | None
    decided_by: Actor | None
    execution: Execution
    justification: str | None = None
    rule: str | None = None
    approvals: list[Vote] = field(default_factory=list)
    required_approvals: int = 1
    risk_level: str | None = None
    priority: str | None = None
    agent_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    decided_at: datetime | None = None
    expires_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def effective_details(self) -> dict[str, Any]:
        """What to act on: the reviewer's edit when there is one, else what was asked for."""
        return self.modified_details if self.modified_details is not None else self.details

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def is_settled(self) -> bool:
        """Nothing more will happen: decided (and, when the service executes it, executed) or ended."""
        if self.status == "pending":
            return False
        return self.status != "approved" or self.execution.status in _EXECUTION_DONE

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Approval":
        votes = [Vote(Actor.from_dict(v.get("by")) or Actor("unknown", ""), _time(v.get("at")), v.get("note"))
                 for v in data.get("approvals") or []]
        return cls(
            approval_id=data["approvalId"], status=data["status"], action=data.get("action", ""),
            summary=data.get("summary", ""), details=data.get("details") or {},
            modified_details=data.get("modifiedDetails"), changes=data.get("changes") or {},
            decision_note=data.get("decisionNote"), decided_by=Actor.from_dict(data.get("decidedBy")),
            execution=Execution.from_dict(data.get("execution")), justification=data.get("justification"),
            rule=data.get("rule"), approvals=votes, required_approvals=data.get("requiredApprovals", 1),
            risk_level=data.get("riskLevel"), priority=data.get("priority"), agent_name=data.get("agentName"),
            metadata=data.get("metadata") or {}, created_at=_time(data.get("createdAt")),
            decided_at=_time(data.get("decidedAt")), expires_at=_time(data.get("expiresAt")), raw=data)


@dataclass(frozen=True)
class ApprovalPage:
    """One page of `list()`, newest first; pass `next_cursor` back for the next."""

    data: list[Approval]
    next_cursor: str | None


@dataclass(frozen=True)
class WebhookEvent:
    """A verified callback (CONTRACT §4)."""

    id: str  # the `webhook-id`: the same for every retry of one delivery, so duplicates can be dropped
    type: str  # approval.approved | approval.rejected | approval.expired | approval.cancelled | …
    timestamp: datetime | None
    approval: Approval
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


__all__ = ["Actor", "Approval", "ApprovalPage", "Execution", "ExecutionStatus", "Priority", "RiskLevel",
           "Status", "Vote", "WebhookEvent"]
