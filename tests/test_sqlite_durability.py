"""SQLite's durability and checkpoints, and the collector's freeze, as the running service has them.

The pragmas are read back through the app's own engine (a pooled reader's connection and the group
commit writer's), so a setting that a connection hook forgot or a later statement changed shows here.
"""

import asyncio
import gc
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from api.main import create_app
from api.sqlite_checkpoint import BACKSTOP_PAGES
from tests.conftest import PG_URL, REFUND

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="SQLite's pragmas and WAL file")

PRAGMAS = ("journal_mode", "synchronous", "wal_autocheckpoint")


async def _pragmas(session) -> tuple:
    return tuple([(await session.execute(text(f"PRAGMA {name}"))).scalar() for name in PRAGMAS])


@sqlite_only
async def test_every_connection_of_the_app_is_wal_and_syncs_at_each_commit(client, auth, container):
    # FULL is 2: the WAL is synced before COMMIT returns (NORMAL, 1, may lose a committed transaction).
    expected = ("wal", 2, BACKSTOP_PAGES)
    answer = await client.post("/v1/approvals", json=REFUND, headers=auth)
    assert answer.status_code == 202
    async with container.db.read() as session:
        assert await _pragmas(session) == expected
    assert await container.db.write(_pragmas) == expected  # the group commit writer's connection


def _wal_index(database_url: str) -> tuple[int, int]:
    """The WAL's last frame (mxFrame) and how far checkpoints have copied it (nBackfill), from the
    WAL index SQLite shares with every connection: its header is 48 bytes, kept twice, then nBackfill."""
    shm = Path(database_url.removeprefix("sqlite+aiosqlite:///") + "-shm").read_bytes()
    return int.from_bytes(shm[16:20], sys.byteorder), int.from_bytes(shm[96:100], sys.byteorder)


@sqlite_only
async def test_the_wal_is_checkpointed_off_the_writers_path(client, auth, container):
    """A few requests are far below the 1,000 pages at which SQLite would checkpoint in a COMMIT: the
    checkpointer's own thread copies them into the database file shortly after."""
    answers = await asyncio.gather(*(client.post("/v1/approvals", json=REFUND, headers=auth) for _ in range(20)))
    assert {answer.status_code for answer in answers} == {202}
    url = container.settings.database_url
    for _ in range(100):
        last, copied = _wal_index(url)
        if last and copied == last:
            break
        await asyncio.sleep(0.05)
    last, copied = _wal_index(url)
    assert last > 0 and copied == last, f"WAL frames {last}, checkpointed {copied}"


async def test_start_up_objects_are_frozen_while_the_app_serves(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000  # the imports and the app: never walked by a collection
    assert gc.get_freeze_count() == 0  # given back when it stops (tests start many apps)
