"""One callback attempt over the wire, and the schedule of attempts (CONTRACT §4).

`post_callback` sends to the addresses `check_callback_url` approved and never resolves the host
name again, so a DNS answer that changes after the check (rebinding) cannot steer the request
inward. The name still travels where it belongs: in `Host`, and for https in SNI and in the
certificate check.

The caller (the outbox job) signs the body, re-checks the URL before each attempt, records the
`AttemptResult`, and schedules the next attempt with `next_delay`.
"""

import asyncio
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from api.callbacks.ssrf import DEFAULT_PORTS, Target

USER_AGENT = "Cheqpoint-Webhooks/1.0"
TIMEOUT_SECONDS = 15.0
# A refused connection elsewhere must leave time to try the host's other addresses.
CONNECT_TIMEOUT_SECONDS = 5.0
ERROR_BODY_CHARS = 200
_ERROR_BODY_BYTES = 2048  # enough for 200 characters of any UTF-8; a huge error page is not read

# Seconds to wait before each retry. They add up to more than 24 hours (about 31.7 h), the span
# CONTRACT §4 promises; jitter is added by `next_delay`, never subtracted, so the span holds.
_SCHEDULE: tuple[float, ...] = (
    5, 30, 2 * 60, 10 * 60, 30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 8 * 3600, 8 * 3600,
)
MAX_ATTEMPTS = len(_SCHEDULE) + 1  # the first attempt, then one per delay
JITTER = 0.1  # up to +10%, so receivers that failed together are not retried in lockstep


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status_code: int | None  # None when no HTTP answer came back
    error: str | None  # short, for operators: "HTTP 503: busy", "no answer within 15 s"
    duration_ms: int
    retry_after: float | None  # seconds the receiver asked us to wait (Retry-After), if it did


def backoff_schedule() -> list[float]:
    """The nominal delays between attempts, in seconds, without jitter."""
    return list(_SCHEDULE)


def next_delay(
    attempts_made: int,
    *,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before the next attempt, or None when the attempts are used up.

    A receiver's Retry-After is honoured when it asks for longer than the schedule, up to the
    schedule's longest step, so one answer cannot stall a delivery for days.
    """
    if attempts_made < 1 or attempts_made >= MAX_ATTEMPTS:
        return None
    delay = _SCHEDULE[attempts_made - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(_SCHEDULE)))
    return delay * (1 + JITTER * rng())


async def post_callback(
    http: httpx.AsyncClient,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float = TIMEOUT_SECONDS,  # noqa: ASYNC109 - one budget for the attempt, applied below
    clock: Callable[[], datetime] | None = None,
) -> AttemptResult:
    """POST `body` to `target` once; 2xx is success, anything else (a redirect too) is a failure.

    Never raises for the receiver's sake: refusals, timeouts and broken connections come back as a
    failed `AttemptResult`. `timeout` bounds the whole attempt, answer included.
    """
    started = time.monotonic()
    phase_limits = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS))

    def result(ok: bool, status: int | None, error: str | None, retry_after: float | None = None):
        duration_ms = int((time.monotonic() - started) * 1000)
        return AttemptResult(ok, status, error, duration_ms, retry_after)

    try:
        async with asyncio.timeout(timeout):
            response, snippet = await _send_to_first_reachable(http, target, body, headers, phase_limits)
    except httpx.ConnectTimeout:
        return result(False, None, f"could not connect within {min(timeout, CONNECT_TIMEOUT_SECONDS):g} s")
    except (TimeoutError, httpx.TimeoutException):
        return result(False, None, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return result(False, None, _transport_error(exc))

    status = response.status_code
    if 200 <= status < 300:
        return result(True, status, None)
    retry_after = _retry_after(response.headers.get("retry-after"), (clock or _utcnow)())
    if 300 <= status < 400:
        location = response.headers.get("location", "")[:ERROR_BODY_CHARS]
        error = f"HTTP {status}: redirects are not followed"
        if location:
            error += f" (Location: {location})"
    else:
        error = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
    return result(False, status, error, retry_after)


async def _send_to_first_reachable(
    http: httpx.AsyncClient, target: Target, body: bytes, headers: dict[str, str], limits: httpx.Timeout
) -> tuple[httpx.Response, str]:
    """Try the checked addresses in order until one accepts the connection; answer and body snippet."""
    if not target.addresses:
        raise httpx.ConnectError(f"no checked address for {target.host}")
    last_error: httpx.HTTPError | None = None
    for address in target.addresses:
        request = _build_request(http, target, address, body, headers, limits)
        try:
            response = await http.send(request, stream=True, follow_redirects=False)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last_error = exc  # nothing was sent to this address; the next one is safe to try
            continue
        try:
            return response, await _error_snippet(response)
        finally:
            await response.aclose()
    assert last_error is not None
    raise last_error


def _build_request(
    http: httpx.AsyncClient, target: Target, address: str, body: bytes, headers: dict[str, str],
    limits: httpx.Timeout,
) -> httpx.Request:
    url = httpx.URL(target.url).copy_with(host=address, port=target.port, fragment=None)
    merged = httpx.Headers({"user-agent": USER_AGENT, "content-type": "application/json"})
    for name, value in headers.items():
        merged[name] = value
    merged["host"] = _host_header(target)
    # Pinned requests go to an IP, so the client's pool keys them by IP alone. Closing after each
    # request keeps a TLS connection verified for one host name from ever carrying another's callback.
    merged["connection"] = "close"
    # Only a short error snippet is ever read; an uncompressed answer cannot inflate in memory.
    merged["accept-encoding"] = "identity"
    extensions = {}
    if target.scheme == "https" and target.host not in target.addresses:
        extensions["sni_hostname"] = target.host  # SNI and certificate check use the name, not the IP
    return http.build_request(
        "POST", url, content=body, headers=merged, extensions=extensions, timeout=limits
    )


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == DEFAULT_PORTS[target.scheme] else f"{host}:{target.port}"


async def _error_snippet(response: httpx.Response) -> str:
    if 200 <= response.status_code < 400:
        return ""  # success needs no body, and a redirect's reason is its Location
    chunks = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            chunks += chunk
            if len(chunks) >= _ERROR_BODY_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status is what matters; a broken error body must not hide it
    text = " ".join(chunks[:_ERROR_BODY_BYTES].decode("utf-8", errors="replace").split())
    return text[:ERROR_BODY_CHARS]


def _transport_error(exc: httpx.HTTPError) -> str:
    detail = str(exc) or type(exc).__name__
    prefix = "could not connect" if isinstance(exc, httpx.ConnectError) else "transport error"
    return f"{prefix}: {detail}"[:ERROR_BODY_CHARS]


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: either delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _utcnow() -> datetime:
    return datetime.now(UTC)
