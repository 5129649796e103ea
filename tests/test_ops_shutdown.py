"""SIGTERM to real processes: `serve` answers its held requests and exits 0; `worker` hands its claimed
jobs back at once (no waiting out the lease) and exits 0."""

import asyncio
import socket
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from api.db import Database
from api.outbox.models import Job
from tests.conftest import REFUND
from tests.ops_processes import Process, environment, new_connection, served, wait_for

APPROVE_REFUNDS = """
defaults:
  approvers: [U012ABCDEF]
rules:
  - name: refunds approved at once
    actions: [issue_refund]
    decision: approve
"""


def test_sigterm_answers_a_held_request_with_its_current_state_and_exits_0(database_url, tmp_path: Path):
    conn = new_connection(database_url)
    headers = {"Authorization": f"Bearer {conn['key']}"}
    with served(database_url, tmp_path / "serve.log", CHEQPOINT_SHUTDOWN_GRACE_SECONDS="10") as (url, process):
        answer: dict[str, httpx.Response] = {}

        def agent() -> None:  # a synchronous request, held for up to a minute
            answer["held"] = httpx.post(f"{url}/v1/approvals", json={**REFUND, "timeoutMs": 60_000},
                                        headers=headers, timeout=90)

        thread = threading.Thread(target=agent, daemon=True)
        thread.start()

        def pending() -> bool:
            listing = httpx.get(f"{url}/v1/approvals?status=pending", headers=headers, timeout=5).json()
            return bool(listing["data"])

        wait_for(pending, what="the held request to be stored")
        time.sleep(0.3)  # the hold is registered right after the row is stored
        stopped_at = time.monotonic()
        code = process.stop(timeout=20)
        elapsed = time.monotonic() - stopped_at
        thread.join(timeout=5)

    assert code == 0, process.log()
    assert elapsed < 5, f"took {elapsed:.1f} s to stop with one hold open"
    held = answer["held"]
    assert held.status_code == 200
    assert held.json()["status"] == "pending" and held.json()["approvalId"].startswith("apr_")
    # Nothing accepts connections any more.
    try:
        httpx.get(f"{url}/healthz", timeout=2)
        raise AssertionError("the server still answers after SIGTERM")
    except httpx.TransportError:
        pass


class Silent:
    """A callback receiver that accepts connections and never answers: a job stuck mid-call."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.accepted = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self.sock.close()


def _jobs(database_url: str) -> list[Job]:
    async def read() -> list[Job]:
        db = Database(database_url)
        try:
            async with db.read() as session:
                return list(await session.scalars(select(Job).where(Job.kind.like("callback%"))))
        finally:
            await db.close()

    return asyncio.run(read())


def test_sigterm_to_the_worker_returns_its_claimed_job_at_once(database_url, tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(APPROVE_REFUNDS)
    receiver = Silent()
    conn = new_connection(database_url)
    try:
        # The API alone (its worker would take the job): a rule approves at once and enqueues the callback.
        with served(database_url, tmp_path / "serve.log", "--no-worker", CHEQPOINT_POLICY_FILE=str(policy)) as (url, _):
            created = httpx.post(f"{url}/v1/approvals", headers={"Authorization": f"Bearer {conn['key']}"},
                                 json={**REFUND, "execute": False, "callbackUrl": receiver.url}, timeout=10)
        assert created.status_code == 200, created.text
        assert created.json()["status"] == "approved"
        [job] = _jobs(database_url)
        assert job.status == "queued"

        worker = Process(["worker"], environment(database_url), tmp_path / "worker.log")
        try:
            assert receiver.accepted.wait(20), worker.log()  # the worker claimed the job and is mid-delivery
            [claimed] = _jobs(database_url)
            assert claimed.status == "running" and claimed.locked_until is not None
            stopped_at = time.monotonic()
            code = worker.stop(timeout=10)
            elapsed = time.monotonic() - stopped_at
        finally:
            worker.kill()
    finally:
        receiver.close()

    assert code == 0, worker.log()
    assert elapsed < 5, f"the worker took {elapsed:.1f} s to stop"
    [released] = _jobs(database_url)
    # Back in the queue and due now, not waiting out a 120 s lease; the interrupted attempt does not count.
    assert released.status == "queued" and released.locked_until is None
    assert released.attempts == 0
