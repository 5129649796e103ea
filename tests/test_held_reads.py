"""`GET /v1/approvals/{id}?waitMs=` is served by a short-stack middleware (api/approvals/held_reads.py):
its answers, errors included, are the route's, and what it does not recognise still reaches the route."""

import json
import socket
import threading
import time
from pathlib import Path

import httpx

from api.approvals.held_reads import held_wait_ms
from tests.conftest import REFUND
from tests.ops_processes import cheqpoint, new_connection, served


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


def _exchange(sock: socket.socket, raw: bytes, answers: int) -> list[tuple[int, bytes]]:
    """Send `raw` (one request, or several pipelined), read `answers` responses: (status, body) each."""
    sock.sendall(raw)
    buffered, read = b"", []
    while len(read) < answers:
        while b"\r\n\r\n" not in buffered:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(read)} answers"
            buffered += chunk
        head, buffered = buffered.split(b"\r\n\r\n", 1)
        lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
        length = int(lengths[0])
        while len(buffered) < length:
            buffered += sock.recv(65536)
        read.append((int(head[9:12]), buffered[:length]))
        buffered = buffered[length:]
    return read


def test_the_served_protocol_keeps_bodies_pipelines_and_holds_whole(database_url: str, tmp_path: Path) -> None:
    """The product's server swaps uvicorn's per-connection event and pipeline for smaller ones
    (api/lean_connection.py): a body that arrives in pieces, requests pipelined on one connection and a
    hold released by another process's decision are answered as before, on `cheqpoint serve`."""
    conn = new_connection(database_url)
    key = conn["key"].encode()
    body = json.dumps(REFUND).encode()
    create = (b"POST /v1/approvals HTTP/1.1\r\nHost: cheqpoint\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + key + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    with served(database_url, tmp_path / "serve.log", CHEQPOINT_APPROVERS="UOPS") as (url, _process):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            # The body in two pieces, a pause between: the request waits on the cycle's event for the rest.
            sock.sendall(create + body[:20])
            time.sleep(0.5)
            [(status, created)] = _exchange(sock, body[20:], 1)
            assert status == 202, created
            approval_id = json.loads(created)["approvalId"]
            # Three requests in one write: answered in order, on the same connection.
            read = (b"GET /v1/approvals/" + approval_id.encode() + b" HTTP/1.1\r\nHost: cheqpoint\r\n"
                    b"Authorization: Bearer " + key + b"\r\n\r\n")
            answers = _exchange(sock, read + create + body + read, 3)
            assert [status for status, _ in answers] == [200, 202, 200]
            assert json.loads(answers[0][1]) == json.loads(answers[2][1])
            assert json.loads(answers[0][1])["status"] == "pending"

        held: dict[str, httpx.Response] = {}

        def hold() -> None:
            held["answer"] = httpx.get(f"{url}/v1/approvals/{approval_id}?waitMs=20000",
                                       headers={"Authorization": f"Bearer {conn['key']}"}, timeout=30)

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        time.sleep(1.0)
        assert "answer" not in held  # it holds
        decided = cheqpoint(database_url, "approvals", "reject", approval_id, "--as", "UOPS", "--note", "no",
                            CHEQPOINT_APPROVERS="UOPS")
        assert decided.returncode == 0, decided.stderr
        holder.join(timeout=10)
        assert held["answer"].status_code == 200
        assert held["answer"].json()["status"] == "rejected"
