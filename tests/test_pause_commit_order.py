"""The group commit answers a request only once its batch is committed (SQLite), with fewer trips.

A batch's usage counters are now written in the same call as its rows, and a connection that has
committed goes back to the pool without a ROLLBACK: both are places where an answer could slip ahead
of the COMMIT, or a transaction be left open. Here the COMMIT itself is held in SQLite's thread, and
failed, while requests wait on the app; and a connection returned mid-transaction is rolled back.
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



async def test_a_committed_batch_makes_no_rollback_trip(client, auth, container, monkeypatch):
    """SQLAlchemy's reset on return is a ROLLBACK through aiosqlite's thread even after a COMMIT: one
    more trip per batch, before its callers were answered, that did nothing. None follows a COMMIT now
    (a read's session still ends its own transaction), and the writes are all there."""
    after_commit = []
    original_commit, original_rollback = aiosqlite.core.Connection.commit, aiosqlite.core.Connection.rollback
    original_execute = aiosqlite.core.Connection._execute

    async def commit(self: aiosqlite.core.Connection) -> None:
        await original_commit(self)
        self.cheqpoint_committed = True  # until the connection's next call (a read's would clear it)

    async def execute(self: aiosqlite.core.Connection, fn, *args, **kwargs):
        self.cheqpoint_committed = False
        return await original_execute(self, fn, *args, **kwargs)

    async def rollback(self: aiosqlite.core.Connection) -> None:
        if getattr(self, "cheqpoint_committed", False):
            after_commit.append(self._conn.in_transaction)
        await original_rollback(self)

    monkeypatch.setattr(aiosqlite.core.Connection, "commit", commit)
    monkeypatch.setattr(aiosqlite.core.Connection, "rollback", rollback)
    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", execute)
    before = _count(container)
    for _ in range(3):  # batches of several, and alone
        answers = await asyncio.gather(*(client.post("/v1/approvals", json=REFUND, headers=auth) for _ in range(4)))
        assert [answer.status_code for answer in answers] == [202] * 4
        single = await client.post("/v1/approvals", json=REFUND, headers=auth)
        assert single.status_code == 202
    assert after_commit == []
    assert _count(container) == before + 15


async def test_a_connection_returned_inside_a_transaction_is_still_rolled_back(container):
    path = container.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    async with container.db.engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        await driver.execute("DELETE FROM approvals")  # the driver opens a transaction (and the write lock)
        assert driver._conn.in_transaction
    assert not driver._conn.in_transaction  # rolled back on its return to the pool
    with sqlite3.connect(path, timeout=0) as other:
        other.execute("BEGIN IMMEDIATE")  # the write lock is free: this raises "database is locked" if not
        other.rollback()
