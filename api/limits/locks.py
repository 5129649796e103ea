"""One writer at a time per Connection (and per customer) for "read counts → decide → insert".

PostgreSQL: a transaction-scoped advisory lock, released by the commit, so replicas serialise too.
SQLite: every write already runs in the process's one writer (`Database.write`), and a group-commit
batch runs its callers one after another in one session whose queries autoflush the rows added
before them, so a later caller sees the earlier ones; nothing more is needed.
"""

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def lock_key(scope: str, value: str) -> int:
    """A stable signed 64-bit key (advisory locks take a bigint); the scope keeps namespaces apart."""
    digest = hashlib.sha256(f"cheqpoint:{scope}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def serialize(session: AsyncSession, *keys: tuple[str, str]) -> None:
    """Wait for, then hold until commit, the lock of each `(scope, value)`, in a fixed order so two
    transactions never wait on each other in a cycle."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({lock_key(scope, value) for scope, value in keys}):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
