"""A callback receiver, served on a real port with `tests.fakes.server.serve(receiver.app)`.

It checks every delivery the way an agent's endpoint would — the Standard Webhooks signature with
the `standardwebhooks` library and, when asked, Cheqpoint's `x-cheqpoint-signature` computed here
independently — and can misbehave on demand: fail its first N deliveries, be down, redirect, hang.

The server runs in another thread, so the records are guarded by a lock and read as copies.

    receiver = CallbackReceiver(secret)
    with serve(receiver.app) as base_url:
        ...
        assert receiver.ids_seen == ["msg_…"]
"""

import asyncio
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

COMPAT_HEADER = "x-cheqpoint-signature"


@dataclass(frozen=True)
class Attempt:
    """One request that reached the receiver, whatever became of it."""

    webhook_id: str | None
    path: str  # with the query string, as sent
    headers: dict[str, str]  # lower-case names
    body: bytes
    verified: bool  # both signatures that are checked matched
    verify_error: str | None
    status: int  # what the receiver answered
    outcome: str  # "accepted", "bad_signature", "down", "failed_on_purpose", "redirected"


@dataclass(frozen=True)
class Event:
    """A verified delivery the receiver accepted."""

    webhook_id: str
    payload: Any
    headers: dict[str, str]
    body: bytes


@dataclass
class _Behaviour:
    down: bool = False
    fail_remaining: int = 0
    fail_status: int = 503
    redirect_url: str | None = None
    redirect_status: int = 302
    hang_seconds: float = 0.0


@dataclass
class _Records:
    attempts: list[Attempt] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class CallbackReceiver:
    def __init__(self, secret: str, *, check_compat_signature: bool = False) -> None:
        self.secret = secret
        self.check_compat_signature = check_compat_signature
        self._lock = threading.Lock()
        self._behaviour = _Behaviour()
        self._records = _Records()
        self.app = Starlette(routes=[
            Route("/{path:path}", self._receive, methods=["POST", "GET", "PUT", "PATCH", "DELETE"]),
        ])

    # --- what the tests read -------------------------------------------------------------------

    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._records.attempts)

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._records.events)

    @property
    def ids_seen(self) -> list[str]:
        """The webhook-id of each accepted delivery in arrival order; a redelivery appears twice."""
        return [event.webhook_id for event in self.events]

    @property
    def rejected(self) -> list[Attempt]:
        """Attempts refused for a missing or wrong signature."""
        return [attempt for attempt in self.attempts if attempt.outcome == "bad_signature"]

    def events_for(self, webhook_id: str) -> list[Event]:
        return [event for event in self.events if event.webhook_id == webhook_id]

    def wait_for_events(self, count: int, timeout: float = 5.0) -> list[Event]:
        """Block until `count` events were accepted (for deliveries made by a background worker)."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} callbacks, got {len(self.events)}")
            time.sleep(0.01)
        return self.events

    # --- how the tests make it misbehave ---------------------------------------------------------

    def fail_first(self, n: int, status: int = 503) -> None:
        """Answer the next `n` deliveries with `status`, then behave again."""
        with self._lock:
            self._behaviour.fail_remaining = n
            self._behaviour.fail_status = status

    def redirect_to(self, url: str | None, status: int = 302) -> None:
        """Answer every delivery with a redirect to `url` (None stops it)."""
        with self._lock:
            self._behaviour.redirect_url = url
            self._behaviour.redirect_status = status

    @property
    def down(self) -> bool:
        return self._behaviour.down

    @down.setter
    def down(self, value: bool) -> None:
        """While down, every delivery gets 503."""
        with self._lock:
            self._behaviour.down = value

    @property
    def hang_seconds(self) -> float:
        return self._behaviour.hang_seconds

    @hang_seconds.setter
    def hang_seconds(self, value: float) -> None:
        """Hold each delivery this long before answering; setting 0 releases the ones held now."""
        with self._lock:
            self._behaviour.hang_seconds = value

    # --- the endpoint ------------------------------------------------------------------------------

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        verify_error = self._verify(body, headers)

        with self._lock:
            behaviour = self._behaviour
            if behaviour.down:
                status, outcome = 503, "down"
            elif behaviour.fail_remaining > 0:
                behaviour.fail_remaining -= 1
                status, outcome = behaviour.fail_status, "failed_on_purpose"
            elif behaviour.redirect_url is not None:
                status, outcome = behaviour.redirect_status, "redirected"
            elif verify_error is not None:
                status, outcome = 400, "bad_signature"
            else:
                status, outcome = 200, "accepted"
            redirect_url, hang = behaviour.redirect_url, behaviour.hang_seconds

        if outcome == "accepted" and hang > 0:
            await self._hang(request, hang)

        attempt = Attempt(
            webhook_id=headers.get("webhook-id"), path=path, headers=headers, body=body,
            verified=verify_error is None, verify_error=verify_error, status=status, outcome=outcome,
        )
        with self._lock:
            self._records.attempts.append(attempt)
            if outcome == "accepted":
                # Recorded even when the sender gave up waiting: a real receiver would have acted on it,
                # which is why delivery is at least once and ids must be de-duplicated.
                self._records.events.append(Event(headers["webhook-id"], _json_or_none(body), headers, body))

        if outcome == "redirected":
            return Response(status_code=status, headers={"location": redirect_url or "/"})
        if outcome == "accepted":
            return JSONResponse({"received": True}, status_code=status)
        return JSONResponse({"error": outcome, "detail": verify_error}, status_code=status)

    def _verify(self, body: bytes, headers: dict[str, str]) -> str | None:
        """None when the delivery is authentic, else why not."""
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:  # ValueError: a malformed header or body
            return f"webhook-signature: {exc}"
        if self.check_compat_signature:
            expected = hmac.new(self.secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(headers.get(COMPAT_HEADER, ""), expected):
                return f"{COMPAT_HEADER}: no match"
        return None

    async def _hang(self, request: Request, seconds: float) -> None:
        # In small steps, so that a sender that gave up, or a test that sets hang_seconds to 0,
        # frees the server quickly and its shutdown is not held up.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.hang_seconds > 0:
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.05)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
