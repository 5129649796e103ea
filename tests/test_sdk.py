"""Our SDK, `cheqpoint_client`, against the real app on a real port: sync and async clients,
typed results and errors, and `verify_webhook` on callbacks the service really sent."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from cheqpoint_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    NotFoundError,
    TransportError,
    ValidationFailedError,
    WebhookVerificationError,
    verify_webhook,
)
from tests.conftest import REFUND
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.live import Live, start_live

EMAIL = {"action": "send_email", "summary": "Email the customer", "details": {"to": "a@b.co"}}


@pytest.fixture
def live(make_settings: Callable[..., Any]) -> Iterator[Live]:
    yield from start_live(make_settings())


class Recorder:
    """Remembers each request the SDK sends, through httpx's own event hooks."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)

    @property
    def holds(self) -> list[str]:
        return [r.url.params.get("waitMs") or json.loads(r.content).get("timeoutMs") for r in self.requests]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(live: Live, recorder: Recorder) -> Iterator[Client]:
    http = httpx.Client(event_hooks={"request": [recorder]})
    with Client(api_key=live.key, base_url=live.url, hold_ms=300, http=http) as sdk:
        yield sdk
    http.close()


def decide_later(live: Live, seconds: float, verdict: str, **kwargs: object) -> threading.Thread:
    def reviewer() -> None:
        time.sleep(seconds)
        live.decide(live.pending_ids()[0], verdict, **kwargs)

    thread = threading.Thread(target=reviewer, daemon=True)
    thread.start()
    return thread


# ---- request_sync ------------------------------------------------------------------------------------

def test_request_sync_keeps_holding_until_the_time_is_up(client: Client, recorder: Recorder) -> None:
    started = time.monotonic()
    approval = client.request_sync(**EMAIL, timeout_ms=1300)
    elapsed = time.monotonic() - started
    assert approval.status == "pending" and approval.is_pending and not approval.is_settled
    assert 1.2 <= elapsed < 4
    # One POST holding 300 ms, then several GETs with waitMs, the last one only as long as was left.
    assert recorder.requests[0].method == "POST" and recorder.holds[0] == 300
    gets = recorder.requests[1:]
    assert len(gets) >= 3 and all(r.method == "GET" for r in gets)
    assert all(0 < int(h) <= 300 for h in recorder.holds[1:])


def test_request_sync_released_by_an_edit_on_a_later_hold(live: Live, client: Client,
                                                          recorder: Recorder) -> None:
    reviewer = decide_later(live, 0.8, "approve", note="Half only", edits={"amount_cents": 17450})
    started = time.monotonic()
    approval = client.request_sync(**REFUND, timeout_ms=8000, execute=False, risk_level="medium",
                                   agent_name="refund-bot", metadata={"ticket": "T-1"})
    reviewer.join()
    assert time.monotonic() - started < 4 and len(recorder.requests) >= 2
    assert approval.approved and approval.is_settled
    assert approval.effective_details["amount_cents"] == 17450 == approval.modified_details["amount_cents"]
    assert approval.details["amount_cents"] == 34900
    assert approval.changes == {"amount_cents": {"from": 34900, "to": 17450}}
    assert approval.decision_note == "Half only"
    assert approval.decided_by is not None and approval.decided_by.type == "slack_user"
    assert approval.execution.status == "not_requested"
    assert (approval.risk_level, approval.agent_name, approval.metadata) == ("medium", "refund-bot", {"ticket": "T-1"})
    assert isinstance(approval.decided_at, datetime) and approval.decided_at.tzinfo is not None


# ---- request_async, get, list, cancel -----------------------------------------------------------------

def test_request_async_with_callback_and_idempotency_key(live: Live, client: Client) -> None:
    receiver = CallbackReceiver(live.secret)
    with serve(receiver.app) as hook:
        first = client.request_async(**EMAIL, callback_url=f"{hook}/cheqpoint", idempotency_key="email-1")
        again = client.request_async(**EMAIL, callback_url=f"{hook}/cheqpoint", idempotency_key="email-1")
        assert first.is_pending and again.approval_id == first.approval_id
        with pytest.raises(ConflictError) as conflict:
            client.request_async(**{**EMAIL, "summary": "Another"}, idempotency_key="email-1")
        assert conflict.value.status == 409 and "Idempotency-Key" in conflict.value.detail
        live.decide(first.approval_id, "reject", note="Not now")
        event = receiver.wait_for_events(1)[0]
        verified = verify_webhook(event.body, event.headers, live.secret)
    assert verified.type == "approval.rejected" and verified.id == event.webhook_id
    assert verified.approval.approval_id == first.approval_id and verified.approval.decision_note == "Not now"
    assert client.get(first.approval_id).status == "rejected"


def test_get_list_and_cancel(client: Client) -> None:
    ids = [client.request_async(**EMAIL).approval_id for _ in range(3)]
    page = client.list(limit=2)
    assert [a.approval_id for a in page.data] == ids[::-1][:2] and page.next_cursor
    rest = client.list(limit=2, cursor=page.next_cursor)
    assert [a.approval_id for a in rest.data] == ids[:1] and rest.next_cursor is None
    cancelled = client.cancel(ids[0])
    assert cancelled.status == "cancelled" and cancelled.decided_by.type == "system"
    assert [a.approval_id for a in client.list(status="cancelled").data] == [ids[0]]
    with pytest.raises(ConflictError):
        client.cancel(ids[0])
    assert client.get(ids[1], wait_ms=200).is_pending


# ---- typed errors --------------------------------------------------------------------------------------

def test_errors_are_typed_from_problem_json(live: Live, client: Client) -> None:
    with pytest.raises(ValidationFailedError) as invalid:
        client.request_async("issue_refund", "Refund", {"amount_cents": 5})
    assert invalid.value.status == 422 and invalid.value.type.endswith("/validation")
    assert any(e["loc"][:2] == ["details", "charge_id"] or "charge_id" in e["msg"] for e in invalid.value.errors)
    with pytest.raises(NotFoundError) as missing:
        client.get("apr_missing")
    assert "apr_missing" in missing.value.detail
    with pytest.raises(AuthenticationError):
        Client(api_key="cq_wrong", base_url=live.url).list()
    with pytest.raises(TransportError):
        Client(api_key="cq_x", base_url="http://127.0.0.1:9", timeout=2).list()


async def test_async_client_end_to_end(live: Live) -> None:
    async with AsyncClient(api_key=live.key, base_url=live.url, hold_ms=250) as sdk:
        started = time.monotonic()
        held = await sdk.request_sync(**EMAIL, timeout_ms=700)
        assert held.is_pending and 0.6 <= time.monotonic() - started < 3
        asked = await sdk.request_async(**REFUND, execute=False, idempotency_key="refund-1")
        assert (await sdk.request_async(**REFUND, execute=False, idempotency_key="refund-1")).approval_id \
            == asked.approval_id
        decide_later(live, 0.3, "approve")
        decided = await sdk.wait(asked.approval_id, timeout_ms=5000)
        assert decided.approved and decided.effective_details == REFUND["details"]
        page = await sdk.list(status="pending")
        assert [a.approval_id for a in page.data] == [held.approval_id]
        assert (await sdk.cancel(held.approval_id)).status == "cancelled"
        with pytest.raises(NotFoundError):
            await sdk.get("apr_missing")


# ---- verify_webhook -------------------------------------------------------------------------------------

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def signed(payload: dict, secret: str = SECRET, at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign("msg_1", at, body.decode())
    return body, {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(int(at.timestamp())),
                  "Webhook-Signature": signature}


EVENT = {"type": "approval.approved", "timestamp": "2026-01-02T03:04:05Z",
         "data": {"approvalId": "apr_1", "status": "approved", "action": "issue_refund", "summary": "s",
                  "details": {"amount_cents": 100}, "modifiedDetails": None, "changes": {}, "decisionNote": None,
                  "decidedBy": {"type": "rule", "id": "small", "name": "small"}, "execution": {"status": "queued"}}}


def test_verify_webhook_good() -> None:
    body, headers = signed(EVENT)
    event = verify_webhook(body, headers, SECRET)
    assert (event.id, event.type) == ("msg_1", "approval.approved")
    assert event.timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event.approval.effective_details == {"amount_cents": 100}
    assert event.approval.execution.status == "queued" and event.approval.decided_by.type == "rule"


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "missing header", "not an event"])
def test_verify_webhook_bad(tamper: str) -> None:
    body, headers = signed(EVENT if tamper != "not an event" else {"hello": "world"},
                           at=datetime(2020, 1, 1, tzinfo=UTC) if tamper == "stale" else None)
    secret = SECRET
    if tamper == "body":
        body = body.replace(b"100", b"999")
    elif tamper == "secret":
        secret = "whsec_" + "A" * 32
    elif tamper == "missing header":
        del headers["Webhook-Signature"]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, secret)
