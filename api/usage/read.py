"""`totals.*` at intake, from the counters: the same figures as the exact query, at a cost that does
not grow with the number of stored requests.

The window is `[now - 24h, ∞)` (as the exact query's `created_at >= now - 24h`). With S its start,
M the first minute boundary at or after S and H the first hour boundary at or after S, it is read as
hour buckets from H on (at most 25 rows per counter), minute buckets in [M, H) (at most 59), and the
approvals themselves in [S, M): less than a minute of them, found by index. One statement.
"""

import functools
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, func, literal_column, select, type_coerce, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.models import Approval
from api.connections.models import Connection
from api.policy.totals import ActionTotals, ConnectionTotals, CustomerTotals, Totals
from api.policy.usage import amount_expression
from api.usage.keys import COUNTED, HOUR, MINUTE, WINDOW, bucket_end_or_same, customer_actions, group_actions, utc
from api.usage.models import UsageTotal
from api.usage.track import READS, queued

T = UsageTotal.__table__
# Every value is a bound parameter, so the statement is built once per shape (with or without a
# customer, a currency) and its compiled form is reused: building it per request cost more than
# running it.
_EDGE, _MINUTE, _HOUR = bindparam("edge"), bindparam("minute"), bindparam("hour")
_CURRENCY = bindparam("currency")
# Actions are one parameter each, not an expanding list: expanding re-renders the SQL on every
# execution, which cost more than the query.
# Plain words: the status column's enum type would refuse the `|| ''` below as a status.
_COUNTED_WORDS = [str(status) for status in COUNTED]
_ACTIONS = {scope: [bindparam(f"{scope}_action_{i}") for i in range(8)] for scope in ("connection", "customer")}
if len({*group_actions("refunds"), *group_actions("payouts")}) >= len(_ACTIONS["connection"]):
    raise RuntimeError("more refund and payout actions than the totals statement has parameters for")
_SUBJECT = {"connection": bindparam("connection_id"), "customer": bindparam("customer_id")}


def _buckets(scope: str, actions: int, currency: bool) -> list[Any]:
    mine = [T.c.scope == scope, T.c.subject == _SUBJECT[scope], T.c.action.in_(_ACTIONS[scope][:actions])]
    if currency:
        mine.append(T.c.currency == _CURRENCY)
    columns = (literal_column(f"'{scope}'").label("part"), T.c.action, T.c.starts_at, T.c.count, T.c.amount)
    return [select(*columns).where(*mine, T.c.span == HOUR, T.c.starts_at >= _HOUR),
            select(*columns).where(*mine, T.c.span == MINUTE, T.c.starts_at >= _MINUTE, T.c.starts_at < _HOUR)]


def _edge(scope: str, actions: int, currency: bool) -> Any:
    subject = (Approval.connection_id == _SUBJECT[scope] if scope == "connection"
               else Approval.details["customer_id"].as_string() == _SUBJECT[scope])
    where = [subject, Approval.created_at >= _EDGE, Approval.created_at < _MINUTE,
             # `status || ''`: SQLite has no statistics and would rather walk every pending request by
             # the status index than take the time range; the edge minute is what bounds this read.
             type_coerce(Approval.status, String).concat("").in_(_COUNTED_WORDS),
             Approval.action.in_(_ACTIONS[scope][:actions])]
    if currency:
        where.append(Approval.details["currency"].as_string() == _CURRENCY)
    # One row per approval (at most a minute of them) rather than sums: what is read is kept for the
    # transaction and serves every request whose window starts in that minute (track.READS).
    return select(literal_column(f"'{scope}-edge'"), Approval.action, Approval.created_at, literal_column("1"),
                  func.coalesce(amount_expression(), 0)).where(*where)


@functools.cache
def _statement(connection_actions: int, customer_actions: int, currency: bool) -> Any:
    """`customer_actions` 0: the request names no customer, that scope is left out."""
    scopes = {"connection": connection_actions, "customer": customer_actions}
    return union_all(*(part for scope, actions in scopes.items() if actions
                       for part in (*_buckets(scope, actions, currency), _edge(scope, actions, currency))))


async def running_totals(session: AsyncSession, connection: Connection, action: str, details: dict[str, Any],
                         now: datetime) -> Totals:
    """The totals for a request arriving at `now` (a `TotalsProvider` for the approval service)."""
    start = utc(now) - WINDOW
    minute, hour = bucket_end_or_same(start, MINUTE), bucket_end_or_same(start, HOUR)
    wanted = currency if isinstance(currency := details.get("currency"), str) and currency else None
    mine = tuple(sorted({*group_actions("refunds"), *group_actions("payouts"), action}))
    refunds = customer_actions()
    customer = details.get("customer_id")
    if not (isinstance(customer, str) and customer and refunds):
        customer = None
    theirs = refunds if customer is not None else ()
    counters, edge = await _stored(session, connection.id, customer, wanted, mine, theirs, minute, hour)
    sums: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for part_name, (count, amount) in counters.items():
        sums[part_name] = [count, amount]
    for part, name, created_at, count, amount in edge:
        if created_at >= start:
            sums[(part, name)][0] += count
            sums[(part, name)][1] += amount
    for (scope, subject, name, currency, span, starts_at), (count, amount) in queued(session).items():
        in_window = starts_at >= hour if span == HOUR else minute <= starts_at < hour
        if (in_window and (wanted is None or currency == wanted)
                and ((scope == "connection" and subject == connection.id and name in mine)
                     or (scope == "customer" and subject == customer and name in refunds))):
            sums[(scope, name)][0] += count
            sums[(scope, name)][1] += amount

    def total(scope: str, names: tuple[str, ...]) -> tuple[int, int]:
        return sum(sums[(scope, n)][0] for n in names), sum(sums[(scope, n)][1] for n in names)

    paid_back, paid_out = total("connection", group_actions("refunds")), total("connection", group_actions("payouts"))
    same, theirs = total("connection", (action,)), total("customer", refunds)
    return Totals(
        connection=ConnectionTotals(refunds_24h_count=paid_back[0], refunds_24h_cents=paid_back[1],
                                    payouts_24h_count=paid_out[0], payouts_24h_cents=paid_out[1]),
        customer=CustomerTotals(refunds_24h_count=theirs[0], refunds_24h_cents=theirs[1]),
        action=ActionTotals(count_24h=same[0], amount_24h_cents=same[1]),
    )


async def _stored(session: AsyncSession, connection_id: str, customer: str | None, currency: str | None,
                  mine: tuple[str, ...], theirs: tuple[str, ...], minute: datetime,
                  hour: datetime) -> tuple[dict[tuple[str, str], tuple[int, int]], list[tuple[Any, ...]]]:
    """The counters' sums by (scope, action), and the edge minute's approvals, read once per transaction
    (track.READS): the requests of a group commit that share them add them up once."""
    key = (connection_id, customer, currency, mine, theirs, minute, hour)
    reads = session.info.setdefault(READS, {})
    if key in reads:
        return reads[key][2]
    edge = minute - timedelta(seconds=MINUTE)
    # An approval of the edge minute changed earlier in this transaction and not flushed yet (a
    # group commit) must be in the table before it is read. Rarely any.
    if any(isinstance(row, Approval) and row.created_at is not None and edge <= utc(row.created_at) < minute
           for row in (*session.new, *session.dirty)):
        await session.flush()
    values = {"edge": edge, "minute": minute, "hour": hour, "currency": currency, "connection_id": connection_id,
              "customer_id": customer, **{f"connection_action_{i}": name for i, name in enumerate(mine)},
              **{f"customer_action_{i}": name for i, name in enumerate(theirs)}}
    with session.no_autoflush:  # the counters are written at commit; what is queued is added by the caller
        rows = (await session.execute(_statement(len(mine), len(theirs), currency is not None), values)).all()
    counters: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    edge_rows = []  # the window's start, within this minute, differs per request: filtered by the caller
    for part, name, created_at, count, amount in rows:
        if part.endswith("-edge"):
            edge_rows.append((part.removesuffix("-edge"), name, created_at, int(count or 0), int(amount or 0)))
        else:
            counters[(part, name)][0] += int(count or 0)
            counters[(part, name)][1] += int(amount or 0)
    kept = ({part_name: (count, amount) for part_name, (count, amount) in counters.items()}, edge_rows)
    reads[key] = (edge, minute, kept)
    return kept
