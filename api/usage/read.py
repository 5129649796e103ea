"""`totals.*` at intake, from the counters: the same figures as the exact query, at a cost that does
not grow with the number of stored requests.

The window is `[now - 24h, ∞)` (as the exact query's `created_at >= now - 24h`). With S its start,
M the first minute boundary at or after S and H the first hour boundary at or after S, it is read as
hour buckets from H on (at most 25 rows per counter), minute buckets in [M, H) (at most 59), and the
approvals themselves in [S, M): less than a minute of them, found by index. One statement.
"""

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.models import Approval
from api.connections.models import Connection
from api.policy.totals import ActionTotals, ConnectionTotals, CustomerTotals, Totals
from api.policy.usage import amount_expression
from api.usage.keys import COUNTED, HOUR, MINUTE, WINDOW, bucket_end_or_same, customer_actions, group_actions, utc
from api.usage.models import UsageTotal
from api.usage.track import queued

T = UsageTotal.__table__


def _buckets(scope: str, subject: str, actions: tuple[str, ...], currency: str | None,
             hour: datetime, minute: datetime) -> list[Any]:
    mine = [T.c.scope == scope, T.c.subject == subject, T.c.action.in_(actions)]
    if currency is not None:
        mine.append(T.c.currency == currency)
    columns = (literal_column(f"'{scope}'").label("part"), T.c.action, T.c.count, T.c.amount)
    return [select(*columns).where(*mine, T.c.span == HOUR, T.c.starts_at >= hour),
            select(*columns).where(*mine, T.c.span == MINUTE, T.c.starts_at >= minute, T.c.starts_at < hour)]


def _edge(scope: str, conditions: list[Any], actions: tuple[str, ...], currency: str | None,
          start: datetime, minute: datetime) -> Any:
    where = [*conditions, Approval.created_at >= start, Approval.created_at < minute,
             Approval.status.in_(COUNTED), Approval.action.in_(actions)]
    if currency is not None:
        where.append(Approval.details["currency"].as_string() == currency)
    sums = (func.count(), func.coalesce(func.sum(amount_expression()), 0))
    return select(literal_column(f"'{scope}'").label("part"), Approval.action, *sums).where(*where).group_by(
        Approval.action)


async def running_totals(session: AsyncSession, connection: Connection, action: str, details: dict[str, Any],
                         now: datetime) -> Totals:
    """The totals for a request arriving at `now` (a `TotalsProvider` for the approval service)."""
    start = utc(now) - WINDOW
    minute, hour = bucket_end_or_same(start, MINUTE), bucket_end_or_same(start, HOUR)
    wanted = currency if isinstance(currency := details.get("currency"), str) and currency else None
    mine = tuple(sorted({*group_actions("refunds"), *group_actions("payouts"), action}))
    parts: list[Any] = [*_buckets("connection", connection.id, mine, wanted, hour, minute),
                        _edge("connection", [Approval.connection_id == connection.id], mine, wanted, start, minute)]
    customer = details.get("customer_id")
    refunds = customer_actions()
    if isinstance(customer, str) and customer and refunds:
        parts += [*_buckets("customer", customer, refunds, wanted, hour, minute),
                  _edge("customer", [Approval.details["customer_id"].as_string() == customer], refunds, wanted,
                        start, minute)]
    else:
        customer = None
    await _flush_edge_changes(session, start, minute)
    sums: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    with session.no_autoflush:  # the counters are written at commit; what is queued is added below
        rows = (await session.execute(union_all(*parts))).all()
    for part, name, count, amount in rows:
        sums[(part, name)][0] += int(count or 0)
        sums[(part, name)][1] += int(amount or 0)
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


async def _flush_edge_changes(session: AsyncSession, start: datetime, minute: datetime) -> None:
    """The edge is read from the approvals table: an approval of the edge minute changed earlier in
    this transaction (a group commit) and not flushed yet must be flushed first. Rarely any."""
    if start == minute:
        return
    if any(isinstance(row, Approval) and row.created_at is not None and start <= utc(row.created_at) < minute
           for row in (*session.new, *session.dirty)):
        await session.flush()
