"""Held requests and the poller that releases them when another process decides.

The poller's work must not grow with the number of holds: with many idle holds open, what it asks the
database each tick names none of them, and a decision made by another process (the CLI) still releases
its hold within half a second while the others keep waiting.
"""

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.conftest import REFUND
from tests.live import Live, start_live
from tests.test_cli import cheqpoint

HOLDS = 120


@pytest.fixture
def live(make_settings: Any) -> Iterator[Live]:
    yield from start_live(make_settings(limit_holds=0, limit_pending=0, limit_requests_per_minute=0))


async def test_idle_holds_cost_the_poller_nothing_and_a_cli_decision_still_releases_one(live, database_url):
    headers = {"Authorization": f"Bearer {live.key}"}
    limits = httpx.Limits(max_connections=HOLDS + 5)
    async with httpx.AsyncClient(base_url=live.url, headers=headers, limits=limits, timeout=60) as client:
        answers: dict[int, tuple[dict[str, Any], float]] = {}

        async def hold(i: int) -> None:
            response = await client.post("/v1/approvals", json={**REFUND, "timeoutMs": 15_000})
            answers[i] = response.json(), time.perf_counter()

        tasks = [asyncio.create_task(hold(i)) for i in range(HOLDS)]
        for _ in range(300):
            if live.run(_held(live)) == HOLDS:
                break
            await asyncio.sleep(0.1)
        assert live.run(_held(live)) == HOLDS
        # Each request's own creation is a change the poller reports once (its hold reloads once);
        # after a few ticks nothing happens any more.
        await asyncio.sleep(1.0)
        held_ids = set(live.pending_ids()) | {a.id for a in _all_pending(live)}

        # Watch every statement the server sends while nothing happens but the poller's ticks.
        statements: list[tuple[str, Any]] = []

        def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
            statements.append((statement, parameters))

        engine = live.container.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        await asyncio.sleep(1.1)  # four ticks of the 0.25 s poller
        event.remove(engine, "before_cursor_execute", seen)

        assert 1 <= len(statements) <= 16, statements  # a tick is one query (and a ping)
        for statement, parameters in statements:
            named = [p for p in _flat(parameters) if p in held_ids]
            assert not named, f"the poller asked about held approvals one by one: {statement}"

        # Another process decides one of them: its hold lets go, the others keep holding.
        chosen = sorted(held_ids)[0]
        decided = cheqpoint(database_url, "approvals", "reject", chosen, "--as", "UOPS", "--note", "not this one")
        decided_at = time.perf_counter()
        assert decided.returncode == 0, decided.stderr
        for _ in range(100):
            if any(body["approvalId"] == chosen for body, _ in answers.values()):
                break
            await asyncio.sleep(0.02)
        body, released_at = next(a for a in answers.values() if a[0]["approvalId"] == chosen)
        assert body["status"] == "rejected"
        assert released_at - decided_at < 0.5
        assert len(answers) == 1  # nobody else was let go
        assert live.run(_held(live)) == HOLDS - 1

        for approval_id in held_ids - {chosen}:
            live.run(live.container.approvals.cancel(None, approval_id, _system()))
        await asyncio.gather(*tasks)
        assert {body["status"] for body, _ in answers.values()} == {"rejected", "cancelled"}


async def _held(live: Any) -> int:
    return live.container.waiters.held


def _all_pending(live: Any) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    while True:
        page, cursor = live.run(live.container.approvals.list(live.connection_id, status="pending", limit=200,
                                                              cursor=cursor))
        rows += page
        if cursor is None:
            return rows


def _flat(parameters: Any) -> list[Any]:
    if isinstance(parameters, dict):
        return list(parameters.values())
    if isinstance(parameters, list | tuple):
        return [item for value in parameters for item in (_flat(value) if isinstance(value, list | tuple | dict)
                                                           else [value])]
    return [parameters]


def _system() -> Any:
    from api.approvals.actors import Actor

    return Actor("system", "test", "test")
