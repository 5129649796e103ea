"""The audit trail's hash chain: numbering and hashing entries as their transaction commits.

`record()` only queues an entry in `session.info`; just before the transaction commits, the queued
entries are numbered after the current head and hashed, and inserted. Doing it at commit, as the last
thing the transaction does, keeps the chain's lock for the shortest time and after every row lock the
transaction took, so it cannot deadlock with them.

Two writers must never read the same head. On PostgreSQL (several replicas) a transaction-scoped
advisory lock serialises the assignment. On SQLite the server's group commit is one transaction at a
time already, but a CLI process may write the same file: a no-op UPDATE takes SQLite's write lock
before the head is read, so the head cannot move until this transaction commits.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from api.audit.models import AuditEvent

GENESIS = "0" * 64  # the `prev_hash` of the first entry
PENDING = "cheqpoint.audit_pending"
# Any fixed 64-bit number works; this one spells "cheqaudt" so it is recognisable in pg_locks.
ADVISORY_LOCK_KEY = int.from_bytes(b"cheqaudt", "big") & 0x7FFF_FFFF_FFFF_FFFF
_HEAD = text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalised(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The value as it will read back from a JSON column, so the hash computed now verifies later."""
    return None if value is None else json.loads(canonical_json(value))


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def hashed_fields(entry: AuditEvent) -> dict[str, Any]:
    """Everything an entry says, plus the previous entry's hash: what its own hash covers."""
    return {"id": entry.id, "seq": entry.seq, "at": iso(entry.at), "event": entry.event,
            "approvalId": entry.approval_id, "connectionId": entry.connection_id, "actor": entry.actor,
            "before": entry.before, "after": entry.after, "detail": entry.detail, "prevHash": entry.prev_hash}


def entry_hash(entry: AuditEvent) -> str:
    return hashlib.sha256(canonical_json(hashed_fields(entry)).encode("utf-8")).hexdigest()


def queue(session: Session, entry: AuditEvent) -> None:
    session.info.setdefault(PENDING, []).append(entry)


def _lock_head(session: Session) -> tuple[int, str]:
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    elif dialect == "sqlite":
        connection.execute(text("UPDATE audit_events SET seq = seq WHERE 0"))
    head = connection.execute(_HEAD).first()
    return (0, GENESIS) if head is None else (int(head[0]), str(head[1]))


@event.listens_for(Session, "before_commit")
def _chain_pending(session: Session) -> None:
    entries: list[AuditEvent] = session.info.pop(PENDING, None) or []
    if not entries:
        return
    seq, prev = _lock_head(session)
    for entry in entries:
        seq += 1
        entry.seq, entry.prev_hash = seq, prev
        entry.hash = prev = entry_hash(entry)
        session.add(entry)
    # Commit flushes what is left; flushing here puts the rows in before anything else can interleave.
    session.flush()


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(PENDING, None)
