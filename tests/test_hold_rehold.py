"""A re-hold (the agent's next `GET …?waitMs=` on a pending request) needs no database, and is still told
of every change: a decision by another process, a cancellation, an expiry, a revoked key.

Ten thousand holds capped at 60 s are about 167 re-holds a second; each used to authenticate, load the
approval at its start and load it again at its end. The waiters remember a pending approval's answer
until they hear of any change to it (api/approvals/waiters.py), so those loads are skipped; these tests
check, through the served app, that what is skipped could not have said anything new.
"""

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from api.approvals.actors import Actor
from api.connections.auth import CACHE_SECONDS
from api.db import utcnow
from api.main import build_container, running
from tests.conftest import REFUND
from tests.live import Live, start_live
from tests.test_cli import cheqpoint


@pytest.fixture
def live(make_settings: Any) -> Iterator[Live]:
    yield from start_live(make_settings(limit_holds=0, limit_pending=0, limit_requests_per_minute=0))


class Statements:
    """Every statement the served app sends to its database while in use, with its parameters."""

    def __init__(self, live: Live) -> None:
        self.engine = live.container.db.engine.sync_engine
        self.seen: list[tuple[str, Any]] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        self.seen.append((statement, parameters))

    def __enter__(self) -> "Statements":
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def naming(self, approval_id: str) -> list[str]:
        return [s for s, p in self.seen if approval_id in repr(p)]


async def _pending(client: httpx.AsyncClient) -> str:
    created = await client.post("/v1/approvals", json=REFUND)
    assert created.status_code == 202, created.text
    approval_id = created.json()["approvalId"]
    held = await client.get(f"/v1/approvals/{approval_id}", params={"waitMs": 100})
    assert held.status_code == 200 and held.json()["status"] == "pending"
    return approval_id


def _client(live: Live, key: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {key or live.key}"}, timeout=30)


async def test_a_rehold_reads_nothing_yet_a_decision_by_another_process_releases_it(live, database_url):
    async with _client(live) as client:
        approval_id = await _pending(client)
        with Statements(live) as statements:
            again = await client.get(f"/v1/approvals/{approval_id}", params={"waitMs": 300})
        assert again.status_code == 200 and again.json()["status"] == "pending"
        assert again.json()["approvalId"] == approval_id and again.json()["details"] == REFUND["details"]
        assert statements.naming(approval_id) == []  # neither at its start nor at its end

        holding = asyncio.create_task(client.get(f"/v1/approvals/{approval_id}", params={"waitMs": 20_000}))
        await asyncio.sleep(0.3)
        decided = cheqpoint(database_url, "approvals", "reject", approval_id, "--as", "UOPS", "--note", "no")
        decided_at = time.perf_counter()
        assert decided.returncode == 0, decided.stderr
        answer = await asyncio.wait_for(holding, 5)
        assert answer.json()["status"] == "rejected" and time.perf_counter() - decided_at < 1.0
        after = await client.get(f"/v1/approvals/{approval_id}", params={"waitMs": 20_000})
        assert after.json()["status"] == "rejected" and after.json()["decisionNote"] == "no"


async def test_a_rehold_right_after_another_process_decided_is_released_by_the_poller(live, make_settings):
    """The re-hold arrives before the poller has read the decision: it starts from the remembered
    pending answer, and the poller's next tick (0.25 s) wakes it."""
    other = build_container(make_settings())  # another instance: its decisions reach us only by the poller
    async with running(other, worker=False), _client(live) as client:
        for verdict in ("approve", "reject"):
            approval_id = await _pending(client)
            await other.decisions.decide(approval_id, Actor("operator", "UOPS", "ops"), verdict, note="elsewhere")
            started = time.perf_counter()
            answer = await client.get(f"/v1/approvals/{approval_id}", params={"waitMs": 10_000})
            assert answer.json()["status"] in ("approved", "rejected") and answer.json()["decisionNote"] == "elsewhere"
            assert time.perf_counter() - started < 1.0


async def test_a_remembered_request_expired_by_another_process_answers_expired(live, make_settings):
    later = build_container(make_settings(), clock=lambda: utcnow() + timedelta(days=30))
    async with running(later, worker=False), _client(live) as client:
        approval_id = await _pending(client)
        assert (await later.decisions.expire(approval_id)) is not None
        started = time.perf_counter()
        answer = await client.get(f"/v1/approvals/{approval_id}", params={"waitMs": 10_000})
        assert answer.json()["status"] == "expired" and time.perf_counter() - started < 1.0


async def test_a_remembered_request_cancelled_answers_cancelled_at_once(live):
    async with _client(live) as client:
        approval_id = await _pending(client)
        cancelled = await client.post(f"/v1/approvals/{approval_id}/cancel")
        assert cancelled.status_code == 200
        started = time.perf_counter()
        answer = await client.get(f"/v1/approvals/{approval_id}", params={"waitMs": 10_000})
        assert answer.json()["status"] == "cancelled" and time.perf_counter() - started < 0.5


async def test_a_remembered_answer_is_only_for_its_own_connection(live):
    _id, other_key, _secret = live.new_connection("someone-else")
    async with _client(live) as client, _client(live, other_key) as stranger:
        approval_id = await _pending(client)
        answer = await stranger.get(f"/v1/approvals/{approval_id}", params={"waitMs": 200})
        assert answer.status_code == 404, answer.text
        assert REFUND["details"]["charge_id"] not in answer.text and "pending" not in answer.text


async def test_a_revoked_key_stops_reholding_within_the_key_cache_time(live, database_url):
    async with _client(live) as client:
        approval_id = await _pending(client)
        revoked = cheqpoint(database_url, "connections", "revoke", live.connection_id)
        revoked_at = time.perf_counter()
        assert revoked.returncode == 0, revoked.stderr
        while True:
            answer = await client.get(f"/v1/approvals/{approval_id}", params={"waitMs": 50})
            if answer.status_code == 401:
                break
            assert answer.status_code == 200 and time.perf_counter() - revoked_at < CACHE_SECONDS + 0.5
        assert time.perf_counter() - revoked_at < CACHE_SECONDS + 0.5


async def test_a_synchronous_request_holds_without_reading_itself_back(live):
    async with _client(live) as client:
        with Statements(live) as statements:
            created = await client.post("/v1/approvals", json={**REFUND, "timeoutMs": 300})
        assert created.status_code == 200 and created.json()["status"] == "pending"
        approval_id = created.json()["approvalId"]
        reads = [s for s in statements.naming(approval_id) if s.lstrip().upper().startswith("SELECT")]
        assert reads == [], reads
