"""Creating, listing, revoking, rotating and authenticating Connections.

Keys and secrets never reach the audit trail: entries name a key by its display prefix and a secret
by a short fingerprint.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.effects import Effects
from api.audit import service as audit
from api.callbacks.signing import new_webhook_secret
from api.connections import revocation
from api.connections.keys import display_prefix, hash_key, new_key
from api.connections.models import Connection
from api.db import utcnow
from api.errors import Conflict, NotFound, ValidationFailed
from api.ids import new_id


@dataclass(frozen=True)
class NewConnection:
    connection: Connection
    key: str  # shown once, never stored


@dataclass(frozen=True)
class Rotated:
    connection: Connection
    secret: str  # the new key or webhook secret, shown once
    previous_valid_until: datetime | None  # None: the previous one stopped working at once


def _now(session: AsyncSession) -> datetime:
    return session.info.get("clock", utcnow)()


def secret_fingerprint(secret: str) -> str:
    """Enough to tell two secrets apart in the audit trail, nothing to sign with."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


async def create(session: AsyncSession, name: str, actor: dict[str, Any] | None = None) -> NewConnection:
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("a Connection needs a name of 1 to 200 characters")
    key = new_key()
    connection = Connection(id=new_id("con"), name=name, key_prefix=display_prefix(key), key_hash=hash_key(key),
                            webhook_secret=new_webhook_secret(), created_at=utcnow())
    session.add(connection)
    audit.record(session, "connection.created", connection_id=connection.id, actor=actor or {"type": "operator"},
                 after={"name": name, "keyPrefix": connection.key_prefix,
                        "webhookSecret": secret_fingerprint(connection.webhook_secret)})
    await session.flush()
    return NewConnection(connection, key)


async def list_all(session: AsyncSession) -> list[Connection]:
    return list((await session.scalars(select(Connection).order_by(Connection.created_at))).all())


async def get_live(session: AsyncSession, connection_id: str) -> Connection:
    connection = await session.get(Connection, connection_id, with_for_update=True)
    if connection is None:
        raise NotFound(f"no Connection {connection_id}")
    if connection.revoked_at is not None:
        raise Conflict(f"Connection {connection_id} is revoked")
    return connection


async def rotate_key(session: AsyncSession, connection_id: str, grace: timedelta,
                     actor: dict[str, Any]) -> Rotated:
    """A new key; the current one keeps working for `grace` (replacing any earlier key still in its grace)."""
    connection = await get_live(session, connection_id)
    now, key = _now(session), new_key()
    before = {"keyPrefix": connection.key_prefix}
    until = now + grace if grace > timedelta(0) else None
    connection.previous_key_hash = connection.key_hash if until else None
    connection.previous_key_expires_at = until
    connection.key_hash, connection.key_prefix = hash_key(key), display_prefix(key)
    audit.record(session, "connection.key_rotated", connection_id=connection.id, actor=actor, before=before,
                 after={"keyPrefix": connection.key_prefix, "previousValidUntil": until.isoformat() if until else None})
    await session.flush()
    return Rotated(connection, key, until)


async def rotate_secret(session: AsyncSession, connection_id: str, grace: timedelta,
                        actor: dict[str, Any]) -> Rotated:
    """A new webhook secret; callbacks are signed with both until the grace ends."""
    connection = await get_live(session, connection_id)
    now, secret = _now(session), new_webhook_secret()
    before = {"webhookSecret": secret_fingerprint(connection.webhook_secret)}
    until = now + grace if grace > timedelta(0) else None
    connection.previous_webhook_secret = connection.webhook_secret if until else None
    connection.previous_secret_expires_at = until
    connection.webhook_secret = secret
    audit.record(session, "connection.secret_rotated", connection_id=connection.id, actor=actor, before=before,
                 after={"webhookSecret": secret_fingerprint(secret),
                        "previousValidUntil": until.isoformat() if until else None})
    await session.flush()
    return Rotated(connection, secret, until)


async def authenticate(session: AsyncSession, key: str, now: datetime | None = None) -> Connection | None:
    """The live Connection this key belongs to, or None (unknown, revoked, or a previous key past its grace)."""
    key_hash = hash_key(key)
    connection = await session.scalar(
        select(Connection).where(or_(Connection.key_hash == key_hash, Connection.previous_key_hash == key_hash)))
    if connection is None or not connection.accepts_key_hash(key_hash, now or utcnow()):
        return None
    return connection


async def revoke(session: AsyncSession, connection_id: str, *, effects: Effects | None = None,
                 actor: dict[str, Any] | None = None) -> Connection:
    """Revoke a Connection and cancel its pending approvals (`api.connections.revocation`).

    Pass the container's `effects` so the agents and the Slack messages are told; without them the
    approvals are cancelled and audited but nobody is notified.
    """
    result = await revocation.revoke(session, effects or Effects(), connection_id, actor or {"type": "operator"})
    return result.connection
