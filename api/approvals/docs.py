"""The approval object and list as the OpenAPI document describes them (CONTRACT §3).

Documentation only: the routes answer with `approval_out()`; these models tell clients (and the
conformance tests) its shape. Objects may gain fields, so none of them forbids extra ones.
"""

from typing import Any

from pydantic import BaseModel, Field

from api.approvals.enums import ApprovalStatus, ExecutionStatus


class ActorOut(BaseModel):
    type: str = Field(description="slack_user | rule | operator | system")
    id: str | None
    name: str | None


class VoteOut(BaseModel):
    by: ActorOut
    at: str | None
    note: str | None


class ExecutionOut(BaseModel):
    status: ExecutionStatus
    stripeObjectId: str | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None


class ApprovalOut(BaseModel):
    """Non-finite numbers stored before intake refused them read as null."""

    approvalId: str
    status: ApprovalStatus
    action: str
    summary: str
    details: dict[str, Any]
    justification: str | None
    modifiedDetails: dict[str, Any] | None
    changes: dict[str, Any]
    decisionNote: str | None
    decidedBy: ActorOut | None
    rule: str | None
    approvals: list[VoteOut]
    requiredApprovals: int
    riskLevel: str | None
    priority: str | None
    agentName: str | None
    metadata: dict[str, str]
    callbackUrl: str | None
    execute: bool
    createdAt: str
    decidedAt: str | None
    expiresAt: str
    execution: ExecutionOut


class ApprovalListOut(BaseModel):
    data: list[ApprovalOut]
    nextCursor: str | None
