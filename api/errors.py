"""One error tree for the domain, rendered as RFC 9457 problem+json at the HTTP boundary.

Domain code raises these and never `HTTPException`; vendor errors are translated into them where
the vendor is called.
"""

from typing import Any


class AppError(Exception):
    status = 400
    title = "Bad request"
    type = "about:blank"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the body (Retry-After, …)."""
        return {}

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status,
                                "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body


class ValidationFailed(AppError):
    """Input that does not fit; `errors` holds `{"loc": [...], "msg": ...}` per field."""

    status = 422
    title = "Validation failed"
    type = "https://cheqpoint.dev/problems/validation"


class Unauthorized(AppError):
    status = 401
    title = "Unauthorized"
    type = "https://cheqpoint.dev/problems/unauthorized"


class NotFound(AppError):
    status = 404
    title = "Not found"
    type = "https://cheqpoint.dev/problems/not-found"


class Conflict(AppError):
    status = 409
    title = "Conflict"
    type = "https://cheqpoint.dev/problems/conflict"


class PayloadTooLarge(AppError):
    status = 413
    title = "Payload too large"
    type = "https://cheqpoint.dev/problems/payload-too-large"


class NotConfigured(AppError):
    """A part of the service (Stripe, Slack) is needed but its settings are missing."""

    status = 503
    title = "Not configured"
    type = "https://cheqpoint.dev/problems/not-configured"


class UpstreamUnavailable(AppError):
    """Stripe or Slack could not be reached to check something the request depends on."""

    status = 502
    title = "Upstream unavailable"
    type = "https://cheqpoint.dev/problems/upstream-unavailable"


class TooManyRequests(AppError):
    """A per-Connection limit (docs/security.md); `retry_after` seconds is when asking again may work."""

    status = 429
    title = "Too many requests"
    type = "https://cheqpoint.dev/problems/rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
