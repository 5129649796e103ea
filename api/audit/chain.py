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

from sqlalchemy import event, insert, text
from sqlalchemy.orm import Session

from api.audit.models import AuditEvent
from api.deferred import write_pending

GENESIS = "0" * 64  # the `prev_hash` of the first entry
PENDING = "cheqpoint.audit_pending"
# Any fixed 64-bit number works; this one spells "cheqaudt" so it is recognisable in pg_locks.
ADVISORY_LOCK_KEY = int.from_bytes(b"cheqaudt", "big") & 0x7FFF_FFFF_FFFF_FFFF
_HEAD = text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")


# `json.dumps` with options builds a new encoder at every call; this is the same encoder, built once
# (the same text, so every hash stays as `cheqpoint audit verify` computes it).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> str:
    return _CANONICAL(value)


def normalised(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The value as it will read back from a JSON column, so the hash computed now verifies later."""
    return None if value is None else json.loads(_CANONICAL(value))


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def hashed_fields(entry: AuditEvent) -> dict[str, Any]:
    """Everything an entry says, plus the previous entry's hash: what its own hash covers."""
    return _covered(entry.id, entry.seq, entry.at, entry.event, entry.approval_id, entry.connection_id,
                    entry.actor, entry.before, entry.after, entry.detail, entry.prev_hash)


def _covered(id_: str, seq: int, at: datetime, event_: str, approval_id: str | None, connection_id: str | None,
             actor: Any, before: Any, after: Any, detail: Any, prev_hash: str) -> dict[str, Any]:
    return {"id": id_, "seq": seq, "at": iso(at), "event": event_, "approvalId": approval_id,
            "connectionId": connection_id, "actor": actor, "before": before, "after": after, "detail": detail,
            "prevHash": prev_hash}


def entry_hash(entry: AuditEvent) -> str:
    return _digest(hashed_fields(entry))


def row_hash(row: dict[str, Any]) -> str:
    """The hash of an entry still in its row form (column name → value), as `entry_hash` reads it back."""
    return _digest(_covered(row["id"], row["seq"], row["at"], row["event"], row["approval_id"],
                            row["connection_id"], row["actor"], row["before"], row["after"], row["detail"],
                            row["prev_hash"]))


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(_CANONICAL(fields).encode("utf-8")).hexdigest()


def queue(session: Session, row: dict[str, Any]) -> None:
    """Queue an entry, as the row it will be (every column but `seq`, `prev_hash` and `hash`)."""
    session.info.setdefault(PENDING, []).append(row)


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
    rows: list[dict[str, Any]] = session.info.pop(PENDING, None) or []
    if not rows:
        return
    # Everything else the transaction writes goes in first, so the head's lock is the last one taken.
    write_pending(session)
    session.flush()
    seq, prev = _lock_head(session)
    for row in rows:
        seq += 1
        row["seq"], row["prev_hash"] = seq, prev
        row["hash"] = prev = row_hash(row)
    # One INSERT … executemany for the whole transaction's entries (a group commit's, on SQLite).
    session.connection().execute(insert(AuditEvent.__table__), rows)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(PENDING, None)
