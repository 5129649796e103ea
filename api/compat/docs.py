"""The compatible API's answers as the OpenAPI document describes them (CONTRACT §3b); documentation only."""

from typing import Any, Literal

from pydantic import BaseModel


class InboundOut(BaseModel):
    id: str
    approvalId: str
    status: Literal["approved", "rejected", "pending"]
    details: dict[str, Any]
    modifiedDetails: dict[str, Any] | None
    decisionNote: str | None
    reviewUrl: str | None


class RequestCreatedOut(BaseModel):
    id: str
    status: Literal["PENDING", "APPROVED", "REJECTED"]


class RequestOut(BaseModel):
    id: str
    status: Literal["PENDING", "APPROVED", "REJECTED"]
    details: dict[str, Any]
    modifiedDetails: dict[str, Any] | None
    decisionNote: str | None
    responseNotes: str | None
    decisionReasonCode: str | None
    autoDecided: bool
    autoDecisionRuleName: str | None
    decidedAt: str | None
    retryable: bool
