"""`GET /v1/approvals/{id}?waitMs=` is served by a short-stack middleware (api/approvals/held_reads.py):
its answers, errors included, are the route's, and what it does not recognise still reaches the route."""

import httpx

from api.approvals.held_reads import held_wait_ms
from tests.conftest import REFUND


async def test_held_reads_answer_as_the_route_does(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await client.post("/v1/approvals", json=REFUND, headers=auth)
    approval_id = created.json()["approvalId"]
    plain = await client.get(f"/v1/approvals/{approval_id}", headers=auth)
    held = await client.get(f"/v1/approvals/{approval_id}?waitMs=50", headers=auth)
    assert held.status_code == plain.status_code == 200
    assert held.json() == plain.json() and held.json()["status"] == "pending"
    assert held.headers["content-type"] == plain.headers["content-type"] == "application/json"
    assert held.headers["x-request-id"]  # inside RequestContext: the request keeps its id

    missing = await client.get("/v1/approvals/apr_0000000000nothere?waitMs=50", headers=auth)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["type"] == "https://cheqpoint.dev/problems/not-found"
    for headers in ({}, {"Authorization": "Bearer cq_wrong"}, {"Authorization": "Basic abc"}):
        refused = await client.get(f"/v1/approvals/{approval_id}?waitMs=50", headers=headers)
        assert refused.status_code == 401 and refused.json()["status"] == 401

    # What it does not take goes to the route: FastAPI's own 422 for a waitMs that is not a number.
    for query in ("waitMs=abc", "waitMs=-5", "waitMs=1.5"):
        invalid = await client.get(f"/v1/approvals/{approval_id}?{query}", headers=auth)
        assert invalid.status_code == 422, query


def test_only_plain_held_reads_take_the_short_path() -> None:
    def scope(path: str = "/v1/approvals/apr_1", query: bytes = b"waitMs=100", method: str = "GET",
              headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, object]:
        return {"type": "http", "method": method, "path": path, "query_string": query, "headers": headers or []}

    assert held_wait_ms(scope()) == 100
    assert held_wait_ms(scope(headers=[(b"content-length", b"0")])) == 100
    assert held_wait_ms(scope(query=b"waitMs=0")) is None  # no hold: the route reads it
    assert held_wait_ms(scope(query=b"waitMs=10&x=1")) is None
    assert held_wait_ms(scope(query=b"waitMs=%EF%BC%91")) is None  # a full-width digit: the route decides
    assert held_wait_ms(scope(query=b"waitMs=" + b"9" * 13)) is None
    assert held_wait_ms(scope(method="POST")) is None
    assert held_wait_ms(scope(path="/v1/approvals")) is None
    assert held_wait_ms(scope(path="/v1/approvals/apr_1/cancel")) is None
    assert held_wait_ms(scope(headers=[(b"content-length", b"10")])) is None
    assert held_wait_ms(scope(headers=[(b"transfer-encoding", b"chunked")])) is None
