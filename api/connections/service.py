"""Creating, listing, revoking and authenticating Connections."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import service as audit
from api.callbacks.signing import new_webhook_secret
from api.connections.keys import display_prefix, hash_key, new_key
from api.connections.models import Connection
from api.db import utcnow
from api.errors import NotFound, ValidationFailed
from api.ids import new_id


@dataclass(frozen=True)
class NewConnection:
    connection: Connection
    key: str  # shown once, never stored


async def create(session: AsyncSession, name: str) -> NewConnection:
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("a Connection needs a name of 1 to 200 characters")
    key = new_key()
    connection = Connection(id=new_id("con"), name=name, key_prefix=display_prefix(key), key_hash=hash_key(key),
                            webhook_secret=new_webhook_secret(), created_at=utcnow())
    session.add(connection)
    audit.record(session, "connection.created", connection_id=connection.id, actor={"type": "operator"},
                 after={"name": name, "keyPrefix": connection.key_prefix})
    await session.flush()
    return NewConnection(connection, key)


async def list_all(session: AsyncSession) -> list[Connection]:
    return list((await session.scalars(select(Connection).order_by(Connection.created_at))).all())


async def revoke(session: AsyncSession, connection_id: str) -> Connection:
    connection = await session.get(Connection, connection_id)
    if connection is None:
        raise NotFound(f"no Connection {connection_id}")
    if connection.revoked_at is None:
        connection.revoked_at = utcnow()
        audit.record(session, "connection.revoked", connection_id=connection.id, actor={"type": "operator"})
        await session.flush()
    return connection


async def authenticate(session: AsyncSession, key: str) -> Connection | None:
    """The live Connection this key belongs to, or None (unknown or revoked)."""
    connection = await session.scalar(select(Connection).where(Connection.key_hash == hash_key(key)))
    if connection is None or connection.revoked_at is not None:
        return None
    return connection
