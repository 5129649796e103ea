"""SQLite: a group commit's new rows and audit entries written in one call to the database thread.

aiosqlite runs every statement in its own thread, so each statement is a round trip: the event loop
queues it, the thread waits for the GIL (up to the interpreter's switch interval, 5 ms, while the
loop is busy) and hands the answer back. A batch's rows queued by `api.deferred` and its audit
entries (`api.audit.chain`) took five of them: an INSERT per table, the chain head's lock and read,
the entries' INSERT. Here they are prepared on the event loop (every value converted by its
column's type, exactly as SQLAlchemy would) and written in one call to that thread, which takes the
chain's lock, reads the head, numbers and hashes the entries and inserts everything; the COMMIT
that follows is the batch's only other round trip before its callers are answered.

The usage counters' upsert (`api.usage.track`, written at `before_commit`) goes in the same call:
through SQLAlchemy it was three more round trips per batch (a cursor, the statement, the cursor's
close). Each round trip waits for the event loop to come round to it, so under load they, not the
COMMIT, were most of a batch's time and so of the time the next batch's callers queued.

Where the driver does not offer the call (another aiosqlite, another driver), nothing is taken
from the session and the commit hooks write the rows a statement at a time, as on PostgreSQL.
"""

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, exc, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from api import deferred
from api.audit import chain
from api.audit.models import AuditEvent
from api.db import utcnow
from api.usage import prune, track

AUDIT = AuditEvent.__table__
_AUDIT_KEYS = ("id", "at", "event", "approval_id", "connection_id", "actor", "before", "after", "detail")
_CHAINED = ("seq", "prev_hash", "hash")  # filled in the database thread, under the chain's lock
_LOCK = "UPDATE audit_events SET seq = seq WHERE 0"
_HEAD = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"

Converter = Callable[[Any], Any]


@functools.cache
def _statement(table: Table, keys: tuple[str, ...], dialect: Dialect,
               statement: Any = None) -> tuple[str, tuple[tuple[str, Converter], ...]]:
    """The INSERT's SQL (`statement`, an INSERT into `table`, or a plain one) and, per placeholder,
    the row key and the column type's conversion."""
    compiled = (insert(table) if statement is None else statement).compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup or ())
    if set(names) != set(keys):  # a column default to evaluate, or a key that is not a column
        raise LookupError(f"{table.name}: columns {names} do not match the row's keys {keys}")
    identity: Converter = lambda value: value  # noqa: E731
    converters = tuple((name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect) or identity)
                       for name in names)
    return compiled.string, converters


def _params(rows: list[dict[str, Any]], converters: tuple[tuple[str, Converter], ...]) -> list[tuple[Any, ...]]:
    return [tuple(convert(row[name]) for name, convert in converters) for row in rows]


async def write_in_one_call(session: AsyncSession) -> None:
    """Write the session's queued rows and audit entries now, in one call to aiosqlite's thread."""
    await session.flush()  # ORM objects first (a rule's decision at intake), as the commit would
    info = session.sync_session.info
    queued: dict[Table, list[dict[str, Any]]] = info.get(deferred.PENDING) or {}
    entries: list[dict[str, Any]] = info.get(chain.PENDING) or []
    usage = track.queued(session)
    if not queued and not entries and not usage:
        return
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    call, raw = getattr(driver, "_execute", None), getattr(driver, "_conn", None)
    if call is None or not isinstance(raw, sqlite3.Connection):
        return  # the commit hooks will write them
    dialect = connection.dialect
    try:
        inserts = []
        for table, rows in deferred.in_order(queued):
            sql, converters = _statement(table, tuple(rows[0]), dialect)
            inserts.append((sql, _params(rows, converters)))
        audit = None
        if entries:
            sql, converters = _statement(AUDIT, (*_AUDIT_KEYS, *_CHAINED), dialect)
            known = [(name, convert) for name, convert in converters if name not in _CHAINED]
            audit = (sql, tuple(name for name, _ in converters),
                     [(row, {name: convert(row[name]) for name, convert in known}) for row in entries])
        rows = track.rows_of(usage)
        if rows:
            statement = track.upsert(dialect.name)
            sql, converters = _statement(statement.table, tuple(rows[0]), dialect, statement)
            inserts.append((sql, _params(rows, converters)))
    except LookupError:
        return  # not a shape this module knows: the commit hooks write it
    info.pop(deferred.PENDING, None)
    info.pop(chain.PENDING, None)
    info.pop(track.QUEUED, None)
    info.pop(track.READS, None)  # the counters change now
    if rows:  # this hour's prune job, as the hook would have (a database write only once an hour)
        await connection.run_sync(prune.schedule, info.get("clock", utcnow)())
    try:
        await call(functools.partial(_write, raw, inserts, audit))
    except sqlite3.IntegrityError as error:  # as SQLAlchemy would raise it (a duplicate Idempotency-Key)
        raise exc.IntegrityError("group commit insert", None, error) from error
    except sqlite3.Error as error:
        raise exc.OperationalError("group commit insert", None, error) from error


def _write(raw: sqlite3.Connection, inserts: list[tuple[str, list[tuple[Any, ...]]]],
           audit: tuple[str, tuple[str, ...], list[tuple[dict[str, Any], dict[str, Any]]]] | None) -> None:
    """In the database thread: the rows, then the chain's entries after the head, under its lock."""
    cursor = raw.cursor()
    try:
        for sql, params in inserts:
            cursor.executemany(sql, params)
        if audit is None:
            return
        sql, names, entries = audit
        cursor.execute(_LOCK)  # the write lock before the head is read: a CLI process cannot move it
        head = cursor.execute(_HEAD).fetchone()
        seq, prev = (0, chain.GENESIS) if head is None else (int(head[0]), str(head[1]))
        params = []
        for row, converted in entries:
            seq += 1
            row["seq"], row["prev_hash"] = seq, prev
            row["hash"] = prev = chain.row_hash(row)
            converted.update(seq=seq, prev_hash=row["prev_hash"], hash=row["hash"])  # plain int and text
            params.append(tuple(converted[name] for name in names))
        cursor.executemany(sql, params)
    finally:
        cursor.close()
