"""The group commit answers a request only once its batch is committed (SQLite).

The writer now answers between the COMMIT and the session's close, and writes a batch's usage
counters in the same call as its rows: both are places where an answer could slip ahead of the
COMMIT. Here the COMMIT itself is held in SQLite's thread, and failed, while requests wait on the app.
"""

import asyncio
import sqlite3
import threading

import aiosqlite.core
import pytest

from tests.conftest import PG_URL, REFUND

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's group commit")


def _stored(container, approval_id: str) -> bool:
    """Read by a connection of our own, outside the app: what the database file holds now."""
    path = container.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT 1 FROM approvals WHERE id = ?", (approval_id,)).fetchone() is not None


def _count(container) -> int:
    path = container.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM approvals").fetchone()[0]


@pytest.fixture
def held_commit(monkeypatch):
    """Every COMMIT through aiosqlite waits in SQLite's thread until `release` is set."""
    entered, release = threading.Event(), threading.Event()

    async def commit(self: aiosqlite.core.Connection) -> None:
        def held() -> None:
            entered.set()
            release.wait(timeout=30)
            self._conn.commit()
        await self._execute(held)

    monkeypatch.setattr(aiosqlite.core.Connection, "commit", commit)
    yield entered, release
    release.set()


async def test_no_answer_while_the_batch_commits(client, auth, container, held_commit):
    entered, release = held_commit
    before = _count(container)
    # Several at once, so they share a batch (the batch path), and one more after them.
    requests = [asyncio.create_task(client.post("/v1/approvals", json=REFUND, headers=auth)) for _ in range(5)]
    assert await asyncio.to_thread(entered.wait, 10), "no COMMIT began"
    await asyncio.sleep(0.3)  # time enough for any answer given before the COMMIT to arrive
    assert not any(request.done() for request in requests), "answered while its COMMIT had not returned"
    assert _count(container) == before  # and indeed nothing is in the file yet
    release.set()
    answers = await asyncio.wait_for(asyncio.gather(*requests), 10)
    assert [answer.status_code for answer in answers] == [202] * 5
    for answer in answers:
        assert _stored(container, answer.json()["approvalId"])  # each answered id is in the file


async def test_a_failed_commit_is_never_answered_as_stored(client, auth, container, monkeypatch):
    async def commit(self: aiosqlite.core.Connection) -> None:
        def failing() -> None:
            self._conn.rollback()
            raise sqlite3.OperationalError("disk I/O error")
        await self._execute(failing)

    before = _count(container)
    monkeypatch.setattr(aiosqlite.core.Connection, "commit", commit)
    answers = await asyncio.gather(*(client.post("/v1/approvals", json=REFUND, headers=auth) for _ in range(4)))
    monkeypatch.undo()
    assert all(answer.status_code >= 500 for answer in answers), [answer.status_code for answer in answers]
    assert _count(container) == before
