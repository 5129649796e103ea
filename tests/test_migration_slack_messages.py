"""Migration 0010 moves each review message's channel and ts off `approvals` into `slack_messages`.

Rows written at 0009 (with their votes, claims and digests pointing at the approvals) must arrive
intact, on SQLite (where the column drop rebuilds the table) and on PostgreSQL; the downgrade puts
the columns back with their values.
"""

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from api.db import Database
from api.migrate import downgrade, upgrade

PG_URL = os.environ.get("CHEQPOINT_TEST_POSTGRES_URL")
SCHEMA = "migration_0010"  # its own schema: the shared test schema stays at head for the other tests
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _filler(column: Any, sqlite: bool) -> Any:
    """A value for a required column the test does not care about, by the column's type."""
    kind = type(column.type).__name__.upper()
    if "JSON" in kind:
        return {}
    if "INT" in kind:
        return 1
    if "BOOL" in kind:
        return False
    if "DATE" in kind or "TIME" in kind:
        return NOW.replace(tzinfo=None) if sqlite else NOW
    return "x"


async def _insert(connection: AsyncConnection, name: str, **values: Any) -> None:
    """One row into the table as it is at this revision (reflected), required columns filled."""
    def reflect(sync: Any) -> Table:
        return Table(name, MetaData(), autoload_with=sync)

    table = await connection.run_sync(reflect)
    sqlite = connection.dialect.name == "sqlite"
    row = {c.name: _filler(c, sqlite) for c in table.columns
           if not c.nullable and c.server_default is None and c.autoincrement is not True}
    row.update(values)
    await connection.execute(insert(table).values(**row))


async def _rows(connection: AsyncConnection, sql: str) -> list[tuple]:
    return [tuple(r) for r in (await connection.execute(text(sql))).all()]


async def _exercise(engine: AsyncEngine) -> None:
    await upgrade(engine, "0009")
    async with engine.begin() as connection:
        await _insert(connection, "connections", id="con_1", key_hash="h" * 64)
        await _insert(connection, "approvals", id="apr_posted", connection_id="con_1", status="pending",
                      action="issue_refund", summary="posted one", slack_channel="C0REVIEW",
                      slack_ts="1700000000.000100", details={"amount_cents": 100})
        await _insert(connection, "approvals", id="apr_unposted", connection_id="con_1", status="approved",
                      action="create_payout", summary="decided by a rule", details={})
        # Children of the approvals table: the SQLite rebuild must not lose or refuse them.
        await _insert(connection, "decisions", approval_id="apr_posted", verdict="approve",
                      actor_type="slack_user", actor_id="U1", revision=1)
        await _insert(connection, "slack_claims", approval_id="apr_posted", user_id="U2")

    await upgrade(engine)
    async with engine.connect() as connection:
        assert await _rows(connection, "SELECT approval_id, channel, ts, posted_at FROM slack_messages") == [
            ("apr_posted", "C0REVIEW", "1700000000.000100", None)]
        assert await _rows(connection, "SELECT id, status, summary FROM approvals ORDER BY id") == [
            ("apr_posted", "pending", "posted one"), ("apr_unposted", "approved", "decided by a rule")]
        assert await _rows(connection, "SELECT approval_id, actor_id FROM decisions") == [("apr_posted", "U1")]
        assert await _rows(connection, "SELECT approval_id, user_id FROM slack_claims") == [("apr_posted", "U2")]
        columns = await connection.run_sync(
            lambda sync: {c.name for c in Table("approvals", MetaData(), autoload_with=sync).columns})
        assert not {"slack_channel", "slack_ts"} & columns

    await downgrade(engine, "0009")
    async with engine.connect() as connection:
        assert await _rows(connection, "SELECT id, slack_channel, slack_ts FROM approvals ORDER BY id") == [
            ("apr_posted", "C0REVIEW", "1700000000.000100"), ("apr_unposted", None, None)]
        assert await _rows(connection, "SELECT approval_id FROM decisions") == [("apr_posted",)]
    await upgrade(engine)  # and up again: the round trip is repeatable
    async with engine.connect() as connection:
        assert await _rows(connection, "SELECT approval_id, ts FROM slack_messages") == [
            ("apr_posted", "1700000000.000100")]


async def test_sqlite_upgrade_keeps_posted_messages_and_every_child_row(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")  # with the app's pragmas: foreign keys on
    try:
        async with db.engine.connect() as connection:
            # Without them the rebuild of `approvals` could drop or orphan children unnoticed.
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        await _exercise(db.engine)
    finally:
        await db.close()


@pytest.mark.postgres
async def test_postgres_upgrade_keeps_posted_messages_and_every_child_row():
    assert PG_URL
    admin = create_async_engine(PG_URL)
    async with admin.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    engine = create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": SCHEMA}})
    try:
        await _exercise(engine)
    finally:
        await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await admin.dispose()
