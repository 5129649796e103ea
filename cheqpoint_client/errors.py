"""Typed errors, mapped from the service's problem+json answers (RFC 9457).

Catch `CheqpointClientError` for everything, `APIError` for any answer the service gave, or one of
its subclasses for the case you handle (`ConflictError` for a reused Idempotency-Key, …).
"""

import json
from typing import Any


class CheqpointClientError(Exception):
    """Anything this SDK raises."""


class TransportError(CheqpointClientError):
    """The service could not be reached, or its answer never arrived."""


class WebhookVerificationError(CheqpointClientError):
    """A callback whose signature, timestamp or body does not check out: do not act on it."""


class APIError(CheqpointClientError):
    """The service answered with an error status."""

    def __init__(self, status: int, title: str, detail: str, *, type: str = "about:blank",
                 errors: list[dict[str, Any]] | None = None, body: Any = None,
                 retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after  # seconds, from the answer's Retry-After (429, 503), if it had one
        self.title = title
        self.detail = detail
        self.type = type
        self.errors = errors or []
        self.body = body
        fields = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in self.errors)
        super().__init__(f"{status} {title}: {detail}" + (f" ({fields})" if fields else ""))


class BadRequestError(APIError):
    """400: the body is not JSON, or not something the API can read."""


class AuthenticationError(APIError):
    """401: the Connection Key is missing, wrong or revoked."""


class NotFoundError(APIError):
    """404: no such approval for this Connection."""


class ConflictError(APIError):
    """409: an Idempotency-Key reused with another body, or a request that is no longer pending."""


class PayloadTooLargeError(APIError):
    """413: the body is over the service's limit."""


class ValidationFailedError(APIError):
    """422: the request does not fit; `errors` names each field and what is wrong with it."""


class RateLimitedError(APIError):
    """429: a per-Connection limit; `retry_after` says when asking again may work. Nothing was stored.
    The client waits and asks again itself when that is at most its `max_retry_after`."""


class ServiceUnavailableError(APIError):
    """502/503: a part the request depends on (Stripe, Slack, the database) is unavailable."""


class ServerError(APIError):
    """Any other 5xx: the service failed; nothing was lost, trying again later is safe."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 404: NotFoundError, 409: ConflictError,
    413: PayloadTooLargeError, 422: ValidationFailedError, 429: RateLimitedError, 502: ServiceUnavailableError,
    503: ServiceUnavailableError,
}


def error_from_response(status: int, content: bytes, *, retry_after: float | None = None) -> APIError:
    """The typed error for one answer; bodies that are not problem+json still give a readable error."""
    try:
        body: Any = json.loads(content) if content else None
    except ValueError:
        body = content.decode("utf-8", "replace")[:500]
    problem = body if isinstance(body, dict) else {}
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    detail = problem.get("detail") or problem.get("error") or (body if isinstance(body, str) else "") or ""
    return cls(status, str(problem.get("title") or f"HTTP {status}"), str(detail),
               type=str(problem.get("type") or "about:blank"), errors=problem.get("errors"), body=body,
               retry_after=retry_after)


__all__ = [
    "APIError", "AuthenticationError", "BadRequestError", "CheqpointClientError", "ConflictError",
    "NotFoundError", "PayloadTooLargeError", "RateLimitedError", "ServerError", "ServiceUnavailableError",
    "TransportError", "ValidationFailedError", "WebhookVerificationError", "error_from_response",
]
