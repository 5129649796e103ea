"""The database: engine, sessions, and the one way to write.

`Database.write(fn)` runs `await fn(session)` in one transaction and commits it; services only
flush. On SQLite there is one writer per file anyway, so instead of letting concurrent requests
fight over its lock (each waiting out `busy_timeout`), every write in the process goes through one
task that commits several callers' work in a single transaction (group commit). On PostgreSQL each
call is its own transaction and row locks do the rest.
"""

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, String, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from api.sqlite_checkpoint import BACKSTOP_PAGES, Checkpointer

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[AsyncSession], Awaitable[T]]

JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (which keeps naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EnumText(TypeDecorator):
    """A `StrEnum` kept as its plain value in a VARCHAR: the same column, bytes and migrations as a
    String, but rows read back as members. Not SQLAlchemy's `Enum`, which stores member *names*
    unless told otherwise and would add a CHECK constraint or a PostgreSQL type to the schema."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int = 16) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else str(self.enum(value))  # a misspelt status fails here, not later

    def process_result_value(self, value: str | None, dialect: Any) -> StrEnum | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        dict[str, Any]: JsonType, list[Any]: JsonType, datetime: UTCDateTime}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer. FULL syncs the WAL at every COMMIT: with NORMAL a
    # committed transaction can be lost to a power cut or an OS crash (sqlite.org/pragma.html
    # #pragma_synchronous), and a commit is a promise (an answered 202, a recorded decision). Group
    # commit makes it one sync per batch, not per request.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    # Checkpoints run on their own thread (api/sqlite_checkpoint.py); SQLite's own, inside a COMMIT,
    # is only the backstop.
    cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
    """A connection's return to the pool (the engine's `pool_reset_on_return` is None on SQLite).

    SQLAlchemy's own reset is a ROLLBACK, sent even after the session has committed or rolled back:
    through aiosqlite that is a trip to the connection's thread and back through the event loop, at
    the end of every write batch and every read, for a call that does nothing (the sqlite3 module
    only sends ROLLBACK when a transaction is open). Here it is made only when one is open; reading
    the flag is safe from this thread, as nothing else runs on a connection being returned."""
    if not state.asyncio_safe:  # as SQLAlchemy's: no awaiting here (a connection garbage-collected)
        return
    raw = getattr(getattr(dbapi_connection, "driver_connection", None), "_conn", None)
    if isinstance(raw, sqlite3.Connection) and not raw.in_transaction:
        return
    dbapi_connection.rollback()


# Set in `session.info` by code that enqueued a job, so the committer can wake the worker.
JOBS_ENQUEUED = "cheqpoint.jobs_enqueued"


class GroupCommitWriter:
    """Runs write functions one batch at a time, each batch in one transaction."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession],
                 committed: Callable[[AsyncSession], None], max_batch: int = 64,
                 before_commit: Callable[[AsyncSession], Awaitable[None]] | None = None) -> None:
        self._sessionmaker = sessionmaker
        self._committed = committed
        self._before_commit = before_commit  # the batch's queued rows in one database call (sqlite_batch)
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[WriteFn[Any], asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, fn: WriteFn[T]) -> T:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="cheqpoint-db-writer")
        assert self._queue is not None
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if len(batch) == 1:
                await self._run_alone(*batch[0])
            else:
                await self._run_together(batch)

    async def _run_together(self, batch: list[tuple[WriteFn[Any], asyncio.Future[Any]]]) -> None:
        try:
            async with self._sessionmaker() as session:
                async with session.begin():
                    results = [await fn(session) for fn, _ in batch]
                    if self._before_commit is not None:
                        await self._before_commit(session)
                self._committed(session)
        except Exception:
            # One caller's work failed: run each alone so only that caller sees its error.
            for fn, future in batch:
                await self._run_alone(fn, future)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _run_alone(self, fn: WriteFn[Any], future: asyncio.Future[Any]) -> None:
        try:
            async with self._sessionmaker() as session:
                async with session.begin():
                    result = await fn(session)
                    if self._before_commit is not None:
                        await self._before_commit(session)
                self._committed(session)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)


class Database:
    def __init__(self, url: str, *, echo: bool = False, clock: Callable[[], datetime] | None = None,
                 pool_size: int | None = None, pool_timeout: float | None = None) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs.update(pool_reset_on_return=None)  # _sqlite_reset does it, only when needed
        else:
            kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
        if pool_size is not None:  # a fixed pool: exactly this many connections
            kwargs.update(pool_size=pool_size, max_overflow=0)
        if pool_timeout is not None:  # past it a checkout raises TimeoutError: api/admission.py answers 503
            kwargs.update(pool_timeout=pool_timeout)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "reset", _sqlite_reset)
        # Code that stamps rows without a clock of its own (the outbox) reads the injected one here.
        self.clock = clock or utcnow
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, info={"clock": self.clock})
        self._writer = None
        self._checkpointer: Checkpointer | None = None
        if self.is_sqlite and self.engine.url.database not in (None, "", ":memory:"):
            self._checkpointer = Checkpointer(self.engine.url.database)  # started by the first write
        if self.is_sqlite:
            from api.sqlite_batch import write_in_one_call  # imports the models, which import this module

            self._writer = GroupCommitWriter(self.sessionmaker, self._committed, before_commit=write_in_one_call)
        self.on_enqueued: Callable[[], None] | None = None  # the worker's wake-up, when one runs here

    async def write(self, fn: WriteFn[T]) -> T:
        """Run `fn(session)` in a transaction and commit it; return what it returned."""
        if self._writer is not None:
            if self._checkpointer is not None:
                self._checkpointer.start()  # idempotent: a thread only in a process that writes
            return await self._writer.submit(fn)
        async with self.sessionmaker() as session:
            async with session.begin():
                result = await fn(session)
            self._committed(session)
            return result

    def _committed(self, session: AsyncSession) -> None:
        if session.info.pop(JOBS_ENQUEUED, False) and self.on_enqueued is not None:
            self.on_enqueued()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)  # its last checkpoint may be syncing
        await self.engine.dispose()
