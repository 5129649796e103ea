"""Held requests and the poller that releases them when another process decides.

The poller's work must not grow with the number of holds: with many idle holds open, what it asks the
database each tick names none of them, and a decision made by another process (the CLI) still releases
its hold within half a second while the others keep waiting.
"""

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from api.audit.models import AuditEvent
from api.outbox.kinds import JobStatus
from api.outbox.models import Job
from tests.conftest import REFUND
from tests.live import Live, start_live
from tests.test_cli import cheqpoint

HOLDS = 120
HOLD_S = 60  # each request's hold: the longest the service allows, so a loaded machine has the most room


@pytest.fixture
def live(make_settings: Any) -> Iterator[Live]:
    yield from start_live(make_settings(limit_holds=0, limit_pending=0, limit_requests_per_minute=0))


async def test_idle_holds_cost_the_poller_nothing_and_a_cli_decision_still_releases_one(live, database_url):
    headers = {"Authorization": f"Bearer {live.key}"}
    limits = httpx.Limits(max_connections=HOLDS + 5)
    async with httpx.AsyncClient(base_url=live.url, headers=headers, limits=limits, timeout=60) as client:
        answers: dict[int, tuple[dict[str, Any], float]] = {}

        async def hold(i: int) -> None:
            response = await client.post("/v1/approvals", json={**REFUND, "timeoutMs": HOLD_S * 1000})
            answers[i] = response.json(), time.perf_counter()

        started = time.perf_counter()
        tasks = [asyncio.create_task(hold(i)) for i in range(HOLDS)]
        # Wait (a condition, not a guess at how long a loaded machine takes) until every hold has loaded
        # its approval and waits, the poller has read the audit trail to its end and no job is due: from
        # then on nothing happens but the poller's ticks (and the worker's claim query).
        await _until(lambda: live.run(_quiet(live)), "the holds never all settled into waiting")
        held_ids = set(live.pending_ids()) | {a.id for a in _all_pending(live)}
        assert len(held_ids) == HOLDS

        # Watch every statement the server sends while nothing happens but the poller's ticks.
        statements: list[tuple[float, str, Any]] = []  # when it was sent, what, with which parameters

        def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
            statements.append((time.perf_counter(), statement, parameters))

        def ticks(among: list[tuple[float, str, Any]]) -> list[float]:
            """When each of the poller's reads of the audit trail was sent."""
            return [at for at, statement, _ in among if "FROM audit_events" in statement]

        engine = live.container.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            # Four ticks of the 0.25 s poller, counted rather than timed: a loaded machine runs fewer
            # of them in a given second, not more statements per tick.
            await _until(lambda: len(ticks(statements)) >= 4, "the poller stopped ticking")
            idle = list(statements)
            assert len(idle) <= 4 * len(ticks(idle)), idle  # a tick is one query (and a ping)
            for _, statement, parameters in idle:
                named = [p for p in _flat(parameters) if p in held_ids]
                assert not named, f"the poller asked about held approvals one by one: {statement}"

            # Another process decides one of them: its hold lets go, the others keep holding.
            chosen = sorted(held_ids)[0]
            decided = cheqpoint(database_url, "approvals", "reject", chosen, "--as", "UOPS", "--note",
                                "not this one")
            decided_at = time.perf_counter()
            assert decided.returncode == 0, decided.stderr
            await _until(lambda: any(body["approvalId"] == chosen for body, _ in answers.values()),
                         "the CLI's decision never released its hold")
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        body, _ = next(a for a in answers.values() if a[0]["approvalId"] == chosen)
        assert body["status"] == "rejected"
        # Woken (its hold reads the approval again) by the first poll after the decision, which on a
        # quiet machine is within half a second. Counted in polls, not seconds, so a loaded machine's
        # slower ticks are not taken for a poller that missed the decision; one more is allowed for a
        # stalled loop. (On PostgreSQL, LISTEN wakes it before any poll.)
        # (The reload may come before `decided_at`: the CLI's process has committed before it exits.)
        woken_at = next(at for at, _, parameters in statements[len(idle):] if chosen in _flat(parameters))
        polls = [at for at in ticks(statements) if decided_at < at < woken_at]
        assert len(polls) <= 2, (decided_at, woken_at, polls)
        assert len(answers) == 1  # nobody else was let go
        assert live.run(_held(live)) == HOLDS - 1

        # On the server's loop, awaited here without live.run's 15 s limit: on a loaded machine the
        # cancels take what they take, and the answers keep arriving meanwhile.
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_cancel(live, held_ids - {chosen}), live.loop))
        await asyncio.gather(*tasks)
        assert {body["status"] for body, _ in answers.values()} <= {"rejected", "cancelled", "pending"}
        # Every other hold answered when it was cancelled, or (a machine so loaded that the cancels came
        # late) when its whole time was up, never earlier.
        early = [body for body, at in answers.values() if body["status"] == "pending" and at - started < HOLD_S]
        assert not early, early


async def _held(live: Any) -> int:
    return live.container.waiters.held


async def _until(condition: Callable[[], bool], failure: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.02)


async def _quiet(live: Any) -> bool:
    waiters = live.container.waiters
    # A hold registers before it loads its approval and queues its deadline only after: every deadline
    # queued means every load (a statement naming the approval) has been sent.
    if waiters.held < HOLDS or len(waiters._deadlines._heap) < HOLDS:
        return False
    async with live.container.db.read() as session:
        head = await session.scalar(select(func.max(AuditEvent.seq)))
        due = await session.scalar(select(func.count()).select_from(Job).where(
            Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)), Job.run_at <= live.container.clock()))
    return waiters._seen_seq == head and due == 0


async def _cancel(live: Any, approval_ids: set[str]) -> None:
    """All at once, not one call into the server's loop each: the holds must still be there to answer."""
    await asyncio.gather(*(live.container.approvals.cancel(None, i, _system()) for i in approval_ids))


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
