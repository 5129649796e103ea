"""Cheqpoint's agent SDK for the native API: human approval in Slack before an agent moves money.

Depends on httpx and standardwebhooks only. The MCP server (`cheqpoint_client.mcp_server`) needs the
`mcp` package as well and is not imported here.
"""

from cheqpoint_client.aio import AsyncClient
from cheqpoint_client.client import Client
from cheqpoint_client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CheqpointClientError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    ValidationFailedError,
    WebhookVerificationError,
)
from cheqpoint_client.models import Actor, Approval, ApprovalPage, Execution, Vote, WebhookEvent
from cheqpoint_client.webhooks import verify_webhook

__version__ = "0.1.0"

__all__ = [
    "APIError", "Actor", "Approval", "ApprovalPage", "AsyncClient", "AuthenticationError", "BadRequestError",
    "CheqpointClientError", "Client", "ConflictError", "Execution", "NotFoundError", "PayloadTooLargeError",
    "RateLimitedError", "ServerError", "ServiceUnavailableError", "TransportError", "ValidationFailedError", "Vote",
    "WebhookEvent", "WebhookVerificationError", "verify_webhook",
]
