"""The request dependency that turns `Authorization: Bearer cq_…` into a Connection.

Every request authenticates, so successful look-ups are kept for a second: a key revoked in this
process stops working at once (the cache is cleared), one revoked by another process (the CLI)
within `CACHE_SECONDS`.
"""

import time

from fastapi import Request

from api.connections import service
from api.connections.keys import hash_key
from api.connections.models import Connection
from api.errors import Unauthorized

CACHE_SECONDS = 1.0


class KeyCache:
    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Connection]] = {}

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


async def connection_for_key(request: Request, key: str | None) -> Connection:
    if not key:
        raise Unauthorized("a Connection Key is required")
    container = request.app.state.container
    cache: KeyCache = container.key_cache
    key_hash = hash_key(key)
    connection = cache.get(key_hash)
    if connection is None:
        async with container.db.read() as session:
            connection = await service.authenticate(session, key)
        if connection is None:
            raise Unauthorized("this Connection Key is not valid or has been revoked")
        cache.put(key_hash, connection)
    return connection


async def bearer_connection(request: Request) -> Connection:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send the Connection Key as `Authorization: Bearer cq_…`")
    return await connection_for_key(request, key.strip())
