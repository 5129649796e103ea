"""Keep the counters in step with the approvals, inside the transaction that changes them.

A transition takes `before = counted(approval)`, changes the approval, then calls
`changed(session, approval, before)`: the difference is queued in `session.info` and written just
before the transaction commits, as one upsert (`count = count + delta`) per batch of rows. Writing
at commit rather than at each change:

* touches each counter once per transaction (a SQLite group commit of many intakes writes one
  statement, not one per request), and leaves the ORM's pending rows unflushed until then;
* takes the counters' row locks last and in one sorted order, so two PostgreSQL transactions
  updating the same counters wait for each other and never deadlock (a revocation that cancels
  many approvals included). It runs before the audit chain's commit hook (which takes a global
  lock last, see api/audit/chain.py): a transaction never waits for a counter while holding it.

Reads in the same transaction add what is queued (`queued()`), so a later request in a group
commit counts the earlier ones. What they read from the database does not change until the commit
(the counters are written then), so it is kept for the transaction (`READS`, see `read.py`): a
group commit of many requests of one Connection reads it once. The exception is the edge minute,
read from the approvals themselves: a change to an approval created in a kept edge minute drops
what was kept.

The write is one statement, compiled once, executed with every row of the transaction
(`executemany`), rather than a multi-row VALUES whose SQL depends on how many rows there are and so
was rendered again at every commit. A change to an approval created more than `prune.KEEP` ago is not
written: no window reads its buckets any more, and `prune.py` deletes them.
"""

from collections import defaultdict
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.db import utcnow
from api.usage import prune
from api.usage.keys import SPANS, Key, Sums, bucket_start, contributions
from api.usage.models import UsageTotal

QUEUED = "cheqpoint.usage_queued"
READS = "cheqpoint.usage_reads"  # key → (edge minute's start, its end, what was read), see read.py

# (scope, subject, action, currency, span, starts_at) → [count, amount]
Bucketed = tuple[str, str, str, str, int, datetime]


def counted(approval: Any) -> dict[Key, Sums]:
    """What the approval adds to the totals as it stands: take it before changing the approval."""
    return contributions(approval)


def added(session: Any, approval: Any) -> None:
    """A new approval: it counts from its creation (a pending request counts)."""
    changed(session, approval, {})


def changed(session: Any, approval: Any, before: dict[Key, Sums]) -> None:
    """Queue the difference between what the approval adds now and what it added `before`."""
    after = contributions(approval)
    if after == before:
        return
    if approval.created_at < prune.cutoff(session.info.get("clock", utcnow)()):
        return  # buckets no window reads any more (and that the prune job deletes)
    reads = session.info.get(READS)
    if reads:
        created = approval.created_at
        for key in [key for key, (edge_from, edge_to, _read) in reads.items() if edge_from <= created < edge_to]:
            del reads[key]
    queue: defaultdict[Bucketed, list[int]] = session.info.setdefault(QUEUED, defaultdict(lambda: [0, 0]))
    buckets = [(span, bucket_start(approval.created_at, span)) for span in SPANS]
    for key in before.keys() | after.keys():
        count = after.get(key, (0, 0))[0] - before.get(key, (0, 0))[0]
        amount = after.get(key, (0, 0))[1] - before.get(key, (0, 0))[1]
        if count == 0 and amount == 0:
            continue
        for span, starts_at in buckets:
            sums = queue[(*key, span, starts_at)]
            sums[0] += count
            sums[1] += amount


def queued(session: Any) -> dict[Bucketed, list[int]]:
    return session.info.get(QUEUED) or {}


@cache
def upsert(dialect: str) -> Any:
    """The counters' upsert; also written by api/sqlite_batch.py in a group commit's one call."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(UsageTotal)
    return statement.on_conflict_do_update(
        index_elements=["scope", "subject", "action", "currency", "span", "starts_at"],
        set_={"count": UsageTotal.count + statement.excluded.count,
              "amount": UsageTotal.amount + statement.excluded.amount})


_COLUMNS = ("scope", "subject", "action", "currency", "span", "starts_at")


def rows_of(pending: dict[Bucketed, list[int]]) -> list[dict[str, Any]]:
    """The upsert's rows. Sorted: the row locks are taken in one order by every transaction (see above)."""
    return [{**dict(zip(_COLUMNS, key, strict=True)), "count": sums[0], "amount": sums[1]}
            for key, sums in sorted(pending.items()) if sums != [0, 0]]


def _write_queued(session: Session) -> None:
    session.info.pop(READS, None)  # the counters change now
    rows = rows_of(session.info.pop(QUEUED, None) or {})
    if not rows:
        return
    connection = session.connection()
    connection.execute(upsert(connection.dialect.name), rows)
    prune.schedule(connection, session.info.get("clock", utcnow)())


def _drop_queued(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(QUEUED, None)
    session.info.pop(READS, None)


# `insert=True`: ahead of the audit chain's hook whichever module is imported first (see above).
event.listen(Session, "before_commit", _write_queued, insert=True)
event.listen(Session, "after_soft_rollback", _drop_queued)
