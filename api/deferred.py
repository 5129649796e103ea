"""Rows inserted with Core, many at a time, instead of through the ORM's unit of work.

The intake path writes three rows a request (the approval, its audit entry, its expiry job). As ORM
objects each costs attribute instrumentation, identity-map bookkeeping and a flush plan; as plain
dicts handed to `insert(table)` they cost one executemany per table for a whole group-commit batch.

`defer_insert(session, table, row)` only queues the row in `session.info`. The queued rows are
written, in foreign-key order, before anything could need to see them: before the transaction's
next ORM statement (so a later query in the same transaction, such as a later caller's limit check
in the same group commit, counts them, as autoflush would), before any ORM flush (an ORM row may
refer to them) and before the commit. A rollback drops them with the rest of the transaction.
Every row of one table must name the same columns (one executemany takes one column list).
"""

import functools
from typing import Any

from sqlalchemy import Insert, Table, event, insert
from sqlalchemy.orm import ORMExecuteState, Session

from api.db import Base

PENDING = "cheqpoint.deferred_inserts"


def defer_insert(session: Any, table: Table, row: dict[str, Any]) -> None:
    """Queue `row` for `table` in the session's transaction (an AsyncSession or its sync Session)."""
    sync = getattr(session, "sync_session", session)
    sync.info.setdefault(PENDING, {}).setdefault(table, []).append(row)


def pending(session: Any, table: Table) -> list[dict[str, Any]]:
    """Rows queued for `table` and not yet written (for code that counts without a query)."""
    sync = getattr(session, "sync_session", session)
    return sync.info.get(PENDING, {}).get(table, [])


@functools.cache
def _rank() -> dict[Table, int]:
    # Sorting the metadata's tables walks every foreign key: done once, not per batch.
    return {table: rank for rank, table in enumerate(Base.metadata.sorted_tables)}


@functools.cache
def _insert(table: Table) -> Insert:
    return insert(table)  # built once: its cache key is computed once too


def in_order(queued: dict[Table, list[dict[str, Any]]]) -> list[tuple[Table, list[dict[str, Any]]]]:
    """The queued tables, parents before the tables whose foreign keys name them."""
    rank = _rank()
    return sorted(queued.items(), key=lambda item: rank.get(item[0], len(rank)))


def write_pending(session: Session) -> None:
    """Write every queued row now: one INSERT … executemany per table, parents first."""
    queued: dict[Table, list[dict[str, Any]]] | None = session.info.pop(PENDING, None)
    if not queued:
        return
    connection = session.connection()
    for table, rows in in_order(queued):
        connection.execute(_insert(table), rows)


@event.listens_for(Session, "do_orm_execute")
def _before_statement(state: ORMExecuteState) -> None:
    # As autoflush: code that queries under `no_autoflush` counts `pending()` rows itself.
    if PENDING in state.session.info and state.session.autoflush:
        write_pending(state.session)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if PENDING in session.info:
        write_pending(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(PENDING, None)
