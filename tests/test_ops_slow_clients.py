"""Slow clients cannot hold connections: headers trickled a line every 4 s, or a body that never
completes, are cut off at the documented deadlines (here set short), with a 408 when nothing was answered."""

import json
import socket
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import REFUND
from tests.ops_processes import cheqpoint, new_connection, served, wait_for

HEADER_TIMEOUT = 5
BODY_TIMEOUT = 5
# Without a deadline the server would wait for ever; the test gives up well after the deadline.
GIVE_UP = 20


def _open(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=GIVE_UP)
    return sock


def _closed_after(sock: socket.socket, trickle: list[bytes], every: float) -> tuple[float, bytes]:
    """Send `trickle` a piece every `every` seconds until the server closes; (seconds, what it answered)."""
    started = time.monotonic()
    answered = b""
    sock.settimeout(every)
    pieces = iter(trickle)
    while time.monotonic() - started < GIVE_UP:
        try:
            chunk = sock.recv(4096)
            if not chunk:
                return time.monotonic() - started, answered
            answered += chunk
        except TimeoutError:
            piece = next(pieces, b"X-Slow: still-typing\r\n")
            try:
                sock.sendall(piece)
            except OSError:
                return time.monotonic() - started, answered
        except ConnectionResetError:
            return time.monotonic() - started, answered
    raise AssertionError(f"the connection was still open after {GIVE_UP} s")


def test_trickled_headers_and_unfinished_bodies_are_cut_off(database_url, tmp_path: Path):
    conn = new_connection(database_url)
    limits = {"CHEQPOINT_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
              "CHEQPOINT_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT)}
    with served(database_url, tmp_path / "serve.log", **limits) as (url, _process):
        # Headers: a request line, then one header every 4 s, never the blank line that ends them.
        sock = _open(url)
        sock.sendall(b"POST /v1/approvals HTTP/1.1\r\nHost: cheqpoint\r\n")
        seconds, answered = _closed_after(sock, [], every=4)
        sock.close()
        assert seconds < HEADER_TIMEOUT + 2, seconds
        assert answered.startswith(b"HTTP/1.1 408"), answered

        # Body: complete headers promising 1,000 bytes, then 10 bytes every 4 s.
        sock = _open(url)
        sock.sendall(b"POST /v1/approvals HTTP/1.1\r\nHost: cheqpoint\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + conn["key"].encode() + b"\r\nContent-Length: 1000\r\n\r\n{")
        seconds, answered = _closed_after(sock, [b" " * 10] * 10, every=4)
        sock.close()
        assert seconds < BODY_TIMEOUT + 2, seconds
        assert answered.startswith(b"HTTP/1.1 408"), answered

        # A normal client on the same server is not affected, and a kept-alive connection still works.
        with httpx.Client(base_url=url, timeout=5) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/healthz").status_code == 200


def test_a_key_in_the_query_string_never_reaches_the_log(database_url, tmp_path: Path):
    conn = new_connection(database_url)
    with served(database_url, tmp_path / "serve.log") as (url, process):
        response = httpx.get(f"{url}/api/approvals/apr_missing?apiKey={conn['key']}", timeout=5)
        assert response.status_code in (401, 404)
        httpx.get(f"{url}/healthz?token=sk_live_secretvalue", timeout=5)
        assert process.stop() == 0
    log = process.log()
    assert "/api/approvals/apr_missing" in log and "/healthz" in log  # the requests were logged…
    assert conn["key"] not in log and "apiKey" not in log and "sk_live_secretvalue" not in log  # …without queries


def test_connections_over_the_concurrency_limit_get_503(database_url, tmp_path: Path):
    conn = new_connection(database_url)
    headers = {"Authorization": f"Bearer {conn['key']}"}
    # uvicorn counts the connection asking too: a limit of 3 lets two holds in and refuses a third request.
    with served(database_url, tmp_path / "serve.log", CHEQPOINT_MAX_CONCURRENCY="3") as (url, process):
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        results: list[int] = []

        def hold(key: str) -> None:
            # A probe below may hold a slot just as this arrives: refused, it is sent again (same key) until in.
            while True:
                try:
                    response = httpx.post(f"{url}/v1/approvals", json={**REFUND, "timeoutMs": 30_000},
                                          headers={**headers, "Idempotency-Key": key}, timeout=60)
                except httpx.RemoteProtocolError:
                    continue  # accepted and closed unanswered: over the limit
                if response.status_code != 503:
                    results.append(response.status_code)
                    return

        holders = [threading.Thread(target=hold, args=(f"hold-{n}",), daemon=True) for n in range(2)]
        for thread in holders:
            thread.start()
        def refused() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=5).status_code == 503
            except httpx.RemoteProtocolError:
                return True  # accepted and closed unanswered: refused at once all the same
            except httpx.TransportError:
                return False  # not listening yet, or a probe dropped on a loaded machine

        def both_held() -> bool:
            # Read through the CLI, which takes no slot: a probe over HTTP could itself push a hold out.
            listed = cheqpoint(database_url, "approvals", "list", "--status", "pending", "--json")
            return listed.returncode == 0 and len(json.loads(listed.stdout)["data"]) == 2

        # Once both holds are stored they are holding their connections (a refusal comes before the app),
        # and anything more is refused at once (not queued behind them).
        wait_for(both_held, timeout=30, what="both holds to be stored")
        wait_for(refused, what="the limit to bite")
        assert process.stop() == 0  # the holds are answered and the server stops
        for thread in holders:
            thread.join(timeout=10)
    assert results == [200, 200]
