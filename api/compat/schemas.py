"""Request bodies and response objects of the Cheqpoint-compatible API (CONTRACT §3b).

The bodies are tolerant on purpose: Cheqpoint's clients send fields this service has no use for
(and add new ones between releases), so unknown fields are accepted and ignored rather than
refused as the native API does. `compat_view` is the `GET /api/approvals/{id}` object; compat
callbacks are built from it too.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval

# `maxWaitMs` beyond this is held at it, not refused: Cheqpoint's clients ask for at most this much
# and keep polling `GET /api/approvals/{id}` afterwards.
MAX_WAIT_MS = 10_000


class CompatCreate(BaseModel):
    """The body of both `POST /api/webhooks/inbound` and `POST /api/approvals/request`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    action: str = Field(min_length=1, max_length=100)
    summary: str = Field(min_length=1, max_length=2000)
    details: dict[str, Any]
    # The bounds are the native API's, which these requests become: the document states them here too.
    justification: str | None = Field(None, max_length=10_000)
    api_key: str | None = Field(None, alias="apiKey")
    max_wait_ms: int | None = Field(None, alias="maxWaitMs", ge=0)
    callback_url: str | None = Field(None, alias="callbackUrl", max_length=2048)
    webhook_url: str | None = Field(None, alias="webhookUrl", max_length=2048)
    risk_score: float | None = Field(None, alias="riskScore")
    risk_level: str | None = Field(None, alias="riskLevel")
    priority: str | None = None
    agent_name: str | None = Field(None, alias="agentName", max_length=200)
    metadata: dict[str, Any] | None = Field(None, max_length=50)
    trace: Any = None
    execute: bool | None = None


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


_ENDED_UNDECIDED = (ApprovalStatus.EXPIRED, ApprovalStatus.CANCELLED)  # nobody decided: time ran out, or withdrawn


def upper_status(approval: Approval) -> str:
    """PENDING | APPROVED | REJECTED: expiry and cancellation read as rejections (see `retryable`)."""
    if approval.status == ApprovalStatus.PENDING:
        return "PENDING"
    return "APPROVED" if approval.status == ApprovalStatus.APPROVED else "REJECTED"


def _decider(approval: Approval) -> str | None:
    return (approval.decided_by or {}).get("type")


def retryable(approval: Approval) -> bool:
    """True when the system, not a person or a rule, ended the request: asking again is safe."""
    # Refused because Stripe contradicts the request: the same request would be refused again.
    contradicted = (approval.decided_by or {}).get("id") == "stripe-verification"
    return approval.status in _ENDED_UNDECIDED or (
        approval.status == ApprovalStatus.REJECTED and _decider(approval) == "system" and not contradicted)


def reason_code(approval: Approval) -> str | None:
    """A machine-readable reason for a decision nobody wrote a note for; null for people's decisions."""
    if approval.status in _ENDED_UNDECIDED:
        return approval.status.upper()
    if _decider(approval) == "rule":
        return "POLICY_RULE"
    return None


def compat_view(approval: Approval) -> dict[str, Any]:
    """The `GET /api/approvals/{id}` object of CONTRACT §3b."""
    auto = _decider(approval) == "rule"
    return {
        "id": approval.id,
        "status": upper_status(approval),
        "details": approval.details,
        "modifiedDetails": approval.modified_details,
        "decisionNote": approval.decision_note,
        "responseNotes": approval.decision_note,
        "decisionReasonCode": reason_code(approval),
        "autoDecided": auto,
        "autoDecisionRuleName": (approval.rule or (approval.decided_by or {}).get("name")) if auto else None,
        "decidedAt": _iso(approval.decided_at),
        "retryable": retryable(approval),
    }


def inbound_view(approval: Approval, review_url: str | None) -> dict[str, Any]:
    """The `POST /api/webhooks/inbound` answer: status in lower case, approvals' three spellings only.

    `review_url`: where reviewers decide (the Slack message, once posted), asked of the surfaces."""
    status = upper_status(approval).lower()
    return {
        "id": approval.id,
        "approvalId": approval.id,
        "status": status,
        "details": approval.details,
        "modifiedDetails": approval.modified_details,
        "decisionNote": approval.decision_note,
        "reviewUrl": review_url,
    }
