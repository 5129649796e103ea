"""The request dependency that turns `Authorization: Bearer cq_…` into a Connection.

Every request authenticates, so successful look-ups are kept for a second, and concurrent requests
with the same key share one look-up: a key revoked or rotated by another process (the CLI) stops
working within `CACHE_SECONDS`. A previous key after a rotation works until its grace ends, exactly.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from api import logs
from api.connections import service
from api.connections.keys import hash_key
from api.connections.models import Connection
from api.errors import Unauthorized

CACHE_SECONDS = 1.0


class KeyCache:
    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Connection]] = {}
        self._inflight: dict[str, asyncio.Future[Connection | None]] = {}

    def get(self, key_hash: str) -> Connection | None:
        entry = self._entries.get(key_hash)
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return None
        return entry[1]

    def put(self, key_hash: str, connection: Connection) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic(), connection)

    def clear(self) -> None:
        self._entries.clear()

    async def lookup(self, key_hash: str, load: Callable[[], Awaitable[Connection | None]]) -> Connection | None:
        """The cached Connection, or one shared `load()` for all who ask while it runs."""
        cached = self.get(key_hash)
        if cached is not None:
            return cached
        pending = self._inflight.get(key_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            connection = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: waiters, if any, re-raise it themselves
            raise
        finally:
            self._inflight.pop(key_hash, None)
        if connection is not None:
            self.put(key_hash, connection)
        future.set_result(connection)
        return connection


async def authenticate(container: Any, key: str | None) -> Connection:
    """The Connection a key names (cached, shared look-ups), or Unauthorized."""
    if not key:
        raise Unauthorized("a Connection Key is required")
    cache: KeyCache = container.key_cache
    key_hash = hash_key(key)

    async def load() -> Connection | None:
        async with container.db.read() as session:
            return await service.authenticate(session, key, container.clock())

    connection = await cache.lookup(key_hash, load)
    # Checked on every use, not only at load: a previous key's grace ends on time even while cached.
    if connection is None or not connection.accepts_key_hash(key_hash, container.clock()):
        raise Unauthorized("this Connection Key is not valid or has been revoked")
    logs.connection_id.set(connection.id)  # on every log line of this request from here on
    return connection


async def bearer_connection(request: Request) -> Connection:
    return await authenticate_bearer(request.app.state.container, request.headers.get("authorization", ""))


async def authenticate_bearer(container: Any, header: str) -> Connection:
    """The Connection of an `Authorization: Bearer …` header (api/approvals/held_reads.py calls it too)."""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send the Connection Key as `Authorization: Bearer cq_…`")
    return await authenticate(container, key.strip())
