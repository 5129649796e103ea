"""The SDK retries transport errors and 5xx only where that is safe: a create whose answer was lost is
sent again with the same Idempotency-Key, so the service returns the first approval, not a second one."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cheqpoint_client import AsyncClient, Client
from cheqpoint_client.errors import CheqpointClientError
from tests.conftest import REFUND
from tests.fakes.server import serve
from tests.live import Live, start_live


class LossyProxy:
    """Forwards every request to the service, but answers the first `lose` of them with a 502."""

    def __init__(self, upstream: str, lose: int) -> None:
        self.upstream = upstream
        self.lose = lose
        self.seen: list[tuple[str, str, str | None]] = []  # method, path, Idempotency-Key
        self.app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST"])])

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append((request.method, request.url.path, request.headers.get("idempotency-key")))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with httpx.AsyncClient() as http:
            answer = await http.request(request.method, f"{self.upstream}{request.url.path}",
                                        params=request.query_params, content=body, headers=headers)
        if len(self.seen) <= self.lose:
            return Response(b"bad gateway", status_code=502)  # the service acted; its answer is lost
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type"))


@pytest.fixture
def live(make_settings: Callable[..., Any]) -> Iterator[Live]:
    yield from start_live(make_settings())


def test_a_create_whose_answer_was_lost_is_retried_without_a_second_approval(live: Live):
    proxy = LossyProxy(live.url, lose=2)
    with serve(proxy.app) as url, Client(api_key=live.key, base_url=url) as client:
        approval = client.request_async(REFUND["action"], REFUND["summary"], REFUND["details"])
    assert approval.status == "pending"
    assert [m for m, _, _ in proxy.seen] == ["POST", "POST", "POST"]
    keys = {key for _, _, key in proxy.seen}
    assert len(keys) == 1 and None not in keys  # one key, made up by the SDK, on every attempt
    assert live.count() == 1


async def test_the_async_client_retries_reads_and_gives_up_after_max_retries(live: Live):
    async with httpx.AsyncClient() as http:
        created = await http.post(f"{live.url}/v1/approvals", json=REFUND,
                                  headers={"Authorization": f"Bearer {live.key}"})
    approval_id = created.json()["approvalId"]
    proxy = LossyProxy(live.url, lose=1)
    with serve(proxy.app) as url:
        async with AsyncClient(api_key=live.key, base_url=url) as client:
            assert (await client.get(approval_id)).approval_id == approval_id
        proxy.seen.clear()
        proxy.lose = 10
        async with AsyncClient(api_key=live.key, base_url=url, max_retries=1) as client:
            with pytest.raises(CheqpointClientError):
                await client.get(approval_id)
    assert len(proxy.seen) == 2  # the first try and one retry


def test_a_cancel_is_not_repeated_after_a_5xx(live: Live):
    created = httpx.post(f"{live.url}/v1/approvals", json=REFUND, headers={"Authorization": f"Bearer {live.key}"})
    proxy = LossyProxy(live.url, lose=1)
    with serve(proxy.app) as url, Client(api_key=live.key, base_url=url) as client:
        with pytest.raises(CheqpointClientError):
            client.cancel(created.json()["approvalId"])
    assert len(proxy.seen) == 1  # not sent again: the service may have acted


def test_a_refused_connection_is_retried_then_reported():
    with Client(api_key="cq_test", base_url="http://127.0.0.1:9", max_retries=2) as client:
        with pytest.raises(CheqpointClientError, match="could not reach Cheqpoint"):
            client.list()
