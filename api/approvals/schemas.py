"""The native API's request body and the approval object of CONTRACT §3."""

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from api.approvals.enums import Verdict
from api.approvals.models import Approval

# What `json.dumps(body, sort_keys=True, separators=(",", ":"))` builds at every call, built once: the
# same text, so a key stored before still matches its request.
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode

RiskLevel = Literal["low", "medium", "high", "critical"]
Priority = Literal["low", "normal", "urgent"]


class ApprovalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    action: StrictStr = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_.:-]*$")
    summary: StrictStr = Field(min_length=1, max_length=2000)
    details: dict[str, Any]
    justification: StrictStr | None = Field(None, max_length=10_000)
    callback_url: StrictStr | None = Field(None, max_length=2048)
    timeout_ms: StrictInt | None = Field(None, ge=0)
    execute: StrictBool | None = None
    risk_level: RiskLevel | None = None
    priority: Priority | None = None
    agent_name: StrictStr | None = Field(None, max_length=200)
    metadata: dict[StrictStr, StrictStr] | None = Field(None, max_length=50)
    expires_at: AwareDatetime | None = None

    def fingerprint(self) -> str:
        """What an Idempotency-Key binds to: the request, not how long the caller waits."""
        return self.fingerprint_and_record()[0]

    def fingerprint_and_record(self) -> tuple[str, dict[str, Any]]:
        """The fingerprint, and the request as the audit trail records it (by its API names, nulls
        left out: `model_dump(mode="json", by_alias=True, exclude_none=True)`), from one dump."""
        body = self.model_dump(mode="json", exclude_none=True)
        record = {_API_NAMES[name]: value for name, value in body.items()}
        body.pop("timeout_ms", None)
        return hashlib.sha256(_FINGERPRINT_JSON(body).encode()).hexdigest(), record


# Field name → the name the API reads and writes (no nested model has names of its own to rename).
_API_NAMES = {name: field.serialization_alias or field.alias or name
              for name, field in ApprovalCreate.model_fields.items()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def execution_out(approval: Approval) -> dict[str, Any]:
    return {
        "status": approval.execution_status,
        "stripeObjectId": approval.stripe_object_id,
        "result": approval.execution_result,
        "error": approval.execution_error,
    }


def approval_out(approval: Approval) -> dict[str, Any]:
    """The approval object, exactly as agents, Slack blocks and callbacks see it."""
    # Only votes on the current revision count: an edit asks every approver again.
    votes = [d for d in approval.decisions if d.verdict == Verdict.APPROVE and d.revision == approval.revision]
    return {
        "approvalId": approval.id,
        "status": approval.status,
        "action": approval.action,
        "summary": approval.summary,
        "details": approval.details,
        "justification": approval.justification,
        "modifiedDetails": approval.modified_details,
        "changes": approval.changes or {},
        "decisionNote": approval.decision_note,
        "decidedBy": approval.decided_by,
        "rule": approval.rule,
        "approvals": [
            {"by": {"type": d.actor_type, "id": d.actor_id, "name": d.actor_name}, "at": _iso(d.created_at),
             "note": d.note}
            for d in votes
        ],
        "requiredApprovals": approval.required_approvals,
        "revision": approval.revision,
        "riskLevel": approval.risk_level,
        "priority": approval.priority,
        "agentName": approval.agent_name,
        "metadata": approval.request_metadata or {},
        "callbackUrl": approval.callback_url,
        "execute": approval.execute,
        "createdAt": _iso(approval.created_at),
        "decidedAt": _iso(approval.decided_at),
        "expiresAt": _iso(approval.expires_at),
        "execution": execution_out(approval),
        "stripeFacts": approval.stripe_facts,
    }
