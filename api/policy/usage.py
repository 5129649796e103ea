"""Fill the velocity totals (`totals.*`, see `totals.py` for what counts) from stored approvals.

At intake the request being decided is not stored yet, so "the last 24 hours" is everything from
`now - 24h` on, in its current state. Replaying a stored request (`replaying=` its id) must see the
table as it was when that request came in: nothing created after it (nor itself), and each earlier
request in the state it had then — one rejected, expired or cancelled *later* was still pending, and
pending requests count.

Intake reads the running counters instead (`api/usage/read.py`), which give the same figures at a
constant cost; this exact query is what they are tested against, and what replay needs.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.models import Approval
from api.connections.models import Connection
from api.policy.totals import ActionTotals, ConnectionTotals, CustomerTotals, Totals
from api.usage.keys import COUNTED, WINDOW, customer_actions, group_actions


def amount_expression():
    # A whole refund has no amount_cents: it adds what Stripe refunded, once known.
    return func.coalesce(Approval.details["amount_cents"].as_integer(),
                         Approval.execution_result["amount"].as_integer(), 0)


async def _sum_and_count(session: AsyncSession, *conditions: Any) -> tuple[int, int]:
    summed = select(func.count(), func.coalesce(func.sum(amount_expression()), 0)).where(*conditions)
    row = (await session.execute(summed)).one()
    return int(row[0]), int(row[1])


def _counted_at_intake(now: datetime) -> tuple[Any, ...]:
    return Approval.created_at >= now - WINDOW, Approval.status.in_(COUNTED)


def _counted_when(replaying: str, now: datetime) -> tuple[Any, ...]:
    # Strictly before the replayed request (so never itself); requests created in the same instant
    # are ordered by id, which is time-ordered.
    earlier = or_(Approval.created_at < now, and_(Approval.created_at == now, Approval.id < replaying))
    pending_then = or_(Approval.status.in_(COUNTED), Approval.decided_at > now)
    return Approval.created_at >= now - WINDOW, earlier, pending_then


async def compute_totals(session: AsyncSession, connection: Connection, action: str, details: dict[str, Any],
                         now: datetime, *, replaying: str | None = None) -> Totals:
    """`replaying`: the id of the stored request being decided again (`cheqpoint policy replay`),
    with `now` its `created_at`. A whole refund executed later still adds its executed amount."""
    recent = _counted_at_intake(now) if replaying is None else _counted_when(replaying, now)
    currency = details.get("currency")
    same_currency = (Approval.details["currency"].as_string() == currency,) if currency else ()
    mine = (Approval.connection_id == connection.id, *recent)

    refunds = await _sum_and_count(session, *mine, Approval.action.in_(group_actions("refunds")),
                                   *same_currency)
    payouts = await _sum_and_count(session, *mine, Approval.action.in_(group_actions("payouts")), *same_currency)
    same_action = await _sum_and_count(session, *mine, Approval.action == action, *same_currency)
    customer = (0, 0)
    if details.get("customer_id"):
        customer = await _sum_and_count(session, *recent, Approval.action.in_(customer_actions()),
                                        Approval.details["customer_id"].as_string() == details["customer_id"],
                                        *same_currency)
    return Totals(
        connection=ConnectionTotals(refunds_24h_count=refunds[0], refunds_24h_cents=refunds[1],
                                    payouts_24h_count=payouts[0], payouts_24h_cents=payouts[1]),
        customer=CustomerTotals(refunds_24h_count=customer[0], refunds_24h_cents=customer[1]),
        action=ActionTotals(count_24h=same_action[0], amount_24h_cents=same_action[1]),
    )
