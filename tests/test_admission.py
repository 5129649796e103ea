"""Admission control (api/admission.py), through the wire: with the database pool held busy, requests
are answered 503 with Retry-After (never 500), nothing is stored, and the same requests succeed once
the pool is free. A held request keeps no database connection while it waits."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.audit.models import AuditEvent
from api.audit.verify import verify
from tests.conftest import REFUND
from tests.live import Live, start_live

POOL_TIMEOUT = 1.0


@pytest.fixture
def live(make_settings: Callable[..., Any]) -> Iterator[Live]:
    # One connection in the pool, and a short wait for it: the busy pool is easy to make and quick to see.
    yield from start_live(make_settings(db_pool_size=1, db_pool_timeout_seconds=POOL_TIMEOUT))


def _audit_count(live: Live) -> int:
    async def count() -> int:
        async with live.container.db.read() as session:
            return await session.scalar(select(func.count()).select_from(AuditEvent)) or 0

    return live.run(count())


def _assert_overloaded(response: httpx.Response, *, compat: bool = False) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] in {"1", "2", "3"}  # whole seconds, drawn for each refusal
    if compat:  # the Cheqpoint-compatible API answers errors its own way
        assert "busy" in response.json()["error"]
        return
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "https://cheqpoint.dev/problems/overloaded" and problem["status"] == 503


def test_a_busy_pool_answers_503_with_retry_after_and_stores_nothing(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    with httpx.Client(base_url=live.url, timeout=30) as http:
        first = http.post("/v1/approvals", json=REFUND, headers=headers)
        assert first.status_code == 202
        pending_id = first.json()["approvalId"]
        entries = _audit_count(live)

        # The pool's one connection is taken, as by a saturated process's other requests.
        async def take() -> Any:
            return await live.container.db.engine.connect()

        taken = live.run(take())
        try:
            keyed = {**headers, "Idempotency-Key": "busy-pool-1"}
            _assert_overloaded(http.post("/v1/approvals", json=REFUND, headers=keyed))
            _assert_overloaded(http.post("/v1/approvals", json={**REFUND, "timeoutMs": 5000}, headers=headers))
            _assert_overloaded(http.get(f"/v1/approvals/{pending_id}?waitMs=5000", headers=headers))
            _assert_overloaded(http.post("/api/approvals/request", json={**REFUND, "apiKey": live.key}), compat=True)
        finally:
            live.run(taken.close())

        # Nothing was stored by the refused requests, and the audit chain is whole.
        assert live.count() == 1 and _audit_count(live) == entries
        assert live.run(verify(live.container.db)).intact
        # The same request sent again is served as if it were the first, exactly once.
        again = http.post("/v1/approvals", json=REFUND, headers=keyed)
        assert again.status_code == 202
        replay = http.post("/v1/approvals", json=REFUND, headers=keyed)
        assert replay.json()["approvalId"] == again.json()["approvalId"]
        assert live.count() == 2
        assert http.get(f"/v1/approvals/{pending_id}", headers=headers).json()["status"] == "pending"


def test_held_requests_keep_no_database_connection_while_they_wait(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    with httpx.Client(base_url=live.url, timeout=30) as http:
        ids = [http.post("/v1/approvals", json=REFUND, headers=headers).json()["approvalId"] for _ in range(3)]
    answers: dict[str, httpx.Response] = {}

    def hold(approval_id: str) -> None:
        answers[approval_id] = httpx.get(f"{live.url}/v1/approvals/{approval_id}?waitMs=20000", headers=headers,
                                         timeout=30)

    holders = [threading.Thread(target=hold, args=(i,), daemon=True) for i in ids]
    for thread in holders:
        thread.start()
    deadline = time.monotonic() + 10
    while live.container.waiters.held < len(ids):
        assert time.monotonic() < deadline, "the holds did not start"
        time.sleep(0.02)
    time.sleep(POOL_TIMEOUT * 1.5)  # long past the pool's timeout: a hold keeping a connection would show now

    # Three holds wait on a pool of one connection; other requests are still served.
    with httpx.Client(base_url=live.url, timeout=30) as http:
        assert http.post("/v1/approvals", json=REFUND, headers=headers).status_code == 202
        assert http.get(f"/v1/approvals/{ids[0]}", headers=headers).json()["status"] == "pending"
    for approval_id in ids:
        live.decide(approval_id, "reject", note="no")
    for thread in holders:
        thread.join(timeout=15)
    assert sorted(answers) == sorted(ids)
    assert {r.status_code for r in answers.values()} == {200}
    assert {r.json()["status"] for r in answers.values()} == {"rejected"}


def test_retry_after_is_spread_over_one_to_three_whole_seconds(live: Live) -> None:
    """Clients refused in the same moment are told different delays, so they do not all come back at once."""
    headers = {"Authorization": f"Bearer {live.key}"}

    async def take() -> Any:
        return await live.container.db.engine.connect()

    async def refused_together(count: int) -> list[httpx.Response]:
        # Sent at once, as a crowd of agents would: each waits out the pool's timeout and is refused.
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(base_url=live.url, timeout=30, limits=limits) as http:
            return await asyncio.gather(*(http.post("/v1/approvals", json=REFUND, headers=headers)
                                          for _ in range(count)))

    taken = live.run(take())
    try:
        answers = asyncio.run(refused_together(30))
    finally:
        live.run(taken.close())
    assert {r.status_code for r in answers} == {503}
    delays = [r.headers["retry-after"] for r in answers]
    assert all(d.isdigit() for d in delays), delays  # HTTP's delay-seconds: a whole number, no fraction
    assert {int(d) for d in delays} <= {1, 2, 3}
    # Thirty draws from three values: all alike has odds of 3 in 3^30, so a fixed value shows here.
    assert len(set(delays)) > 1, delays
    assert live.count() == 0
