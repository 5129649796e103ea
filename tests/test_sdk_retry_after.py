"""The SDK waits as long as the service's Retry-After asks (429, 503) before sending a request again,
jittered upwards so that clients refused together do not return together, and hands an answer that
asks for longer than `max_retry_after` back to the caller instead of sleeping through it."""

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.limits.models import Hold
from cheqpoint_client import AsyncClient, Client, RateLimitedError, ServiceUnavailableError, _core
from tests.conftest import REFUND
from tests.fakes.server import serve
from tests.live import Live, start_live


class RefusingProxy:
    """Answers the first `refuse` requests 503 with `retry_after` (a callable, so a date is made when the
    refusal is), then forwards to the service; notes when each request arrived."""

    def __init__(self, upstream: str, refuse: int, retry_after: Callable[[], str]) -> None:
        self.upstream = upstream
        self.refuse = refuse
        self.retry_after = retry_after
        self.arrived: list[float] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST"])])

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        self.arrived.append(time.monotonic())
        if len(self.arrived) <= self.refuse:
            return Response(b'{"title": "Service unavailable", "detail": "busy"}', status_code=503,
                            headers={"Retry-After": self.retry_after()}, media_type="application/problem+json")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with httpx.AsyncClient() as http:
            answer = await http.request(request.method, f"{self.upstream}{request.url.path}",
                                        params=request.query_params, content=body, headers=headers)
        return Response(answer.content, status_code=answer.status_code, media_type=answer.headers.get("content-type"))

    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.arrived, self.arrived[1:], strict=False)]


@pytest.fixture
def live(make_settings: Callable[..., Any]) -> Iterator[Live]:
    yield from start_live(make_settings(limit_holds=1))


def test_the_sync_client_waits_out_a_503s_retry_after_in_seconds(live: Live):
    proxy = RefusingProxy(live.url, refuse=1, retry_after=lambda: "1")
    with serve(proxy.app) as url, Client(api_key=live.key, base_url=url) as client:
        approval = client.request_async(REFUND["action"], REFUND["summary"], REFUND["details"])
    assert approval.status == "pending" and live.count() == 1
    [gap] = proxy.gaps()
    assert 1.0 <= gap < 3.0  # the own back-off alone would have come back within 0.25 s


async def test_the_async_client_waits_out_a_retry_after_given_as_an_http_date(live: Live):
    async with httpx.AsyncClient() as http:
        created = await http.post(f"{live.url}/v1/approvals", json=REFUND,
                                  headers={"Authorization": f"Bearer {live.key}"})
    approval_id = created.json()["approvalId"]
    # An HTTP-date has whole seconds: two from now is at least one from now.
    proxy = RefusingProxy(live.url, refuse=1,
                          retry_after=lambda: format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True))
    with serve(proxy.app) as url:
        async with AsyncClient(api_key=live.key, base_url=url) as client:
            assert (await client.get(approval_id)).approval_id == approval_id
    [gap] = proxy.gaps()
    assert 1.0 <= gap < 4.0


def test_a_retry_after_longer_than_max_retry_after_is_raised_with_it_not_slept_through(live: Live):
    proxy = RefusingProxy(live.url, refuse=10, retry_after=lambda: "120")
    with serve(proxy.app) as url, Client(api_key=live.key, base_url=url, max_retry_after=5) as client:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError) as refused:
            client.list()
    assert time.monotonic() - started < 2
    assert refused.value.retry_after == 120
    assert len(proxy.arrived) == 1  # not sent again 0.25 s later only to be refused again


def _holds(live: Live) -> int:
    async def count() -> int:
        async with live.container.db.read() as session:
            return await session.scalar(select(func.count()).select_from(Hold))

    return live.run(count())


def test_a_429_from_the_hold_limit_is_waited_out_and_then_answered(live: Live):
    """The real service, one hold allowed per Connection: a second hold is refused 429 with the
    seconds until the first ends, and the client asks again then instead of failing."""
    approval_id = httpx.post(f"{live.url}/v1/approvals", json=REFUND,
                             headers={"Authorization": f"Bearer {live.key}"}).json()["approvalId"]
    first = threading.Thread(target=lambda: Client(api_key=live.key, base_url=live.url).get(approval_id,
                                                                                            wait_ms=2000))
    first.start()
    deadline = time.monotonic() + 10
    while _holds(live) == 0:  # the first hold holds the Connection's one slot
        assert time.monotonic() < deadline, "the first hold never started"
        time.sleep(0.01)
    refused = httpx.get(f"{live.url}/v1/approvals/{approval_id}", params={"waitMs": 100},
                        headers={"Authorization": f"Bearer {live.key}"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    statuses: list[int] = []
    http = httpx.Client(timeout=30, event_hooks={"response": [lambda response: statuses.append(response.status_code)]})
    with http, Client(api_key=live.key, base_url=live.url, http=http) as client:
        assert client.get(approval_id, wait_ms=100).approval_id == approval_id
    first.join(timeout=10)
    assert statuses == [429, 200]  # refused while the first held, answered once it had ended


def test_a_429_without_retry_after_is_raised_as_rate_limited():
    app = Starlette(routes=[Route("/v1/approvals", lambda _: Response(b"{}", status_code=429))])
    with serve(app) as url, Client(api_key="cq_test", base_url=url) as client:
        with pytest.raises(RateLimitedError) as refused:
            client.list()
    assert refused.value.retry_after is None


def test_the_wait_is_never_shorter_than_asked_and_spread_so_a_crowd_does_not_return_together():
    asked = httpx.Response(503, headers={"Retry-After": "2"})
    waits = [_core.retry_delay(0, asked, 30.0) for _ in range(200)]
    assert all(2.0 <= w <= 3.0 for w in waits)
    assert max(waits) - min(waits) > 0.3
    capped = [_core.retry_delay(0, asked, 2.2) for _ in range(50)]
    assert all(2.0 <= w <= 2.2 for w in capped)
    # Retry-After: 0 does not make a tight loop; unreadable ones fall back to the own back-off.
    assert _core.retry_delay(1, httpx.Response(503, headers={"Retry-After": "0"}), 30.0) >= 0.25
    for garbage in (b"soon", b"-1", b"1e9", b"\xb2", b"Fri, 99 Foo 2026"):  # b"\xb2" reads as "²", a digit
        assert _core.retry_after(httpx.Response(503, headers=[(b"Retry-After", garbage)])) is None
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert _core.retry_after(httpx.Response(503, headers={"Retry-After": past})) == 0.0
