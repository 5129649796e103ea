"""What the sync and async clients share: configuration, request bodies, answers, the hold plan."""

import email.utils
import math
import os
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from cheqpoint_client.errors import CheqpointClientError, TransportError, error_from_response
from cheqpoint_client.models import Approval, ApprovalPage

DEFAULT_URL = "http://127.0.0.1:8000"
# The service holds one request at most this long; longer waits are several holds in a row.
SERVER_HOLD_MS = 60_000
USER_AGENT = "cheqpoint-client-python/0.1.0"


def resolve(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    """Arguments first, then CHEQPOINT_CONNECTION_KEY and CHEQPOINT_URL, as the service's CLI reads them."""
    key = api_key or os.environ.get("CHEQPOINT_CONNECTION_KEY")
    if not key:
        raise CheqpointClientError("no Connection Key: pass api_key= or set CHEQPOINT_CONNECTION_KEY")
    url = base_url or os.environ.get("CHEQPOINT_URL") or DEFAULT_URL
    return key, url.rstrip("/")


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}


def create_body(action: str, summary: str, details: dict[str, Any], *, justification: str | None = None,
                callback_url: str | None = None, timeout_ms: int | None = None, execute: bool | None = None,
                risk_level: str | None = None, priority: str | None = None, agent_name: str | None = None,
                metadata: dict[str, str] | None = None, expires_at: datetime | None = None) -> dict[str, Any]:
    """The `POST /v1/approvals` body; unset options are left out so the service's defaults apply."""
    body: dict[str, Any] = {
        "action": action, "summary": summary, "details": details, "justification": justification,
        "callbackUrl": callback_url, "timeoutMs": timeout_ms, "execute": execute, "riskLevel": risk_level,
        "priority": priority, "agentName": agent_name, "metadata": metadata,
        "expiresAt": expires_at.isoformat() if expires_at else None,
    }
    return {k: v for k, v in body.items() if v is not None}


def idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def list_params(status: str | None, limit: int | None, cursor: str | None) -> dict[str, Any]:
    return {k: v for k, v in (("status", status), ("limit", limit), ("cursor", cursor)) if v is not None}


def answer(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        return response.json()
    raise error_from_response(response.status_code, response.content, retry_after=retry_after(response))


def approval(response: httpx.Response) -> Approval:
    return Approval.from_dict(answer(response))


def page(response: httpx.Response) -> ApprovalPage:
    data = answer(response)
    return ApprovalPage([Approval.from_dict(a) for a in data["data"]], data.get("nextCursor"))


def transport_error(exc: httpx.HTTPError) -> CheqpointClientError:
    return TransportError(f"could not reach Cheqpoint: {exc}")


class Deadline:
    """How long the next hold may be, given the caller's overall time and the per-call cap."""

    def __init__(self, timeout_ms: int, hold_ms: int) -> None:
        self.end = time.monotonic() + timeout_ms / 1000
        self.hold_ms = hold_ms

    def next_hold_ms(self) -> int:
        """0 when the time is up; otherwise at least 1 ms, at most one hold."""
        remaining = int((self.end - time.monotonic()) * 1000)
        return 0 if remaining <= 0 else min(remaining, self.hold_ms)

    def read_timeout(self, hold_ms: int, margin: float) -> httpx.Timeout:
        """The HTTP read must outlast the hold it asks for."""
        return httpx.Timeout(margin + hold_ms / 1000)


# ---- retries -------------------------------------------------------------------------------------
# Transport errors and 5xx answers are retried, but only where repeating cannot do something twice:
# reads; a create, which always carries an Idempotency-Key (one is made up when the caller gave none,
# so the service returns the first approval instead of making a second); anything else only when the
# connection failed before the request was sent.
DEFAULT_MAX_RETRIES = 2
RETRY_STATUSES = frozenset({500, 502, 503, 504})
# A Retry-After longer than this is not slept through: the answer goes back to the caller (its
# `retry_after` says when), who knows better than a library whether a minute's wait is worth it.
DEFAULT_MAX_RETRY_AFTER = 30.0


def with_idempotency(method: str, path: str, extra: dict[str, str]) -> dict[str, str]:
    if method == "POST" and path == "/v1/approvals" and not extra.get("Idempotency-Key"):
        return {**extra, "Idempotency-Key": f"cqc_{uuid.uuid4().hex}"}
    return extra


def _replayable(method: str, headers: dict[str, str]) -> bool:
    return method == "GET" or bool(headers.get("Idempotency-Key"))


def retry_response(method: str, headers: dict[str, str], response: httpx.Response, max_retry_after: float) -> bool:
    """A 429 is a refusal (the service stored nothing), so any request may be sent again; it is only
    worth it when the service said how long to wait and that wait is one the caller allowed."""
    wait = retry_after(response)
    if wait is not None and wait > max_retry_after:
        return False
    if response.status_code == 429:
        return wait is not None
    return response.status_code in RETRY_STATUSES and _replayable(method, headers)


def retry_error(method: str, headers: dict[str, str], exc: httpx.HTTPError) -> bool:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return True  # nothing reached the service
    return isinstance(exc, httpx.TransportError) and _replayable(method, headers)


def backoff_seconds(attempt: int) -> float:
    """0.25 s, 0.5 s, 1 s … (at most 4 s), with jitter so clients do not retry in step."""
    return min(4.0, 0.25 * 2 ** attempt) * random.uniform(0.5, 1.0)


def retry_after(response: httpx.Response) -> float | None:
    """The answer's Retry-After in seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP-date, a date
    in the past being 0), or None when there is none or it cannot be read."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # not "²", which isdigit() takes and float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_delay(attempt: int, response: httpx.Response | None, max_retry_after: float) -> float:
    """How long to wait before attempt `attempt + 1`. When the service said how long, never less than
    that, stretched by a random 0–50 % (at most to `max_retry_after`) so that clients refused
    together (one Retry-After for all of them) do not come back together; never less than the own
    back-off either, so a `Retry-After: 0` does not turn into a tight loop."""
    own = backoff_seconds(attempt)
    wait = retry_after(response) if response is not None else None
    if wait is None:
        return own
    return max(own, min(max_retry_after, wait * random.uniform(1.0, 1.5)))
