"""What one approval adds to the running totals, and the time buckets it adds it to.

The rules are those of the exact query (`api/policy/usage.py`, kept for `policy replay`): an approval
counts while pending or approved; it adds 1 and its amount, `details.amount_cents` or, for a whole
refund, the `amount` of its execution result once known (0 before). Which totals an action feeds is
declared on its ActionSpec (`totals_group`, `totals_per_customer`); every action feeds its own
`totals.action`.

Each change is added twice, to the hour and to the minute bucket of the approval's `created_at`, so a
24-hour window is read exactly from at most 24 hour rows, 59 minute rows and one minute of approvals
(see `read.py`).
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from api.actions import ACTIONS
from api.approvals.enums import ApprovalStatus

WINDOW = timedelta(hours=24)
COUNTED = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
HOUR, MINUTE = 3600, 60
SPANS = (HOUR, MINUTE)
MAX_CURRENCY = 32  # the column's width; a longer "currency" (outside the catalogue) counts as none

# (scope, subject, action, currency): one counter, before time bucketing.
Key = tuple[str, str, str, str]
# (count, amount)
Sums = tuple[int, int]


@cache
def group_actions(group: str) -> tuple[str, ...]:
    """The catalogue actions whose requests add to `totals.connection.<group>_24h_*`."""
    return tuple(sorted(name for name, spec in ACTIONS.items() if spec.totals_group == group))


@cache
def customer_actions() -> tuple[str, ...]:
    """The actions whose requests add to `totals.customer.refunds_24h_*`."""
    return tuple(sorted(name for name, spec in ACTIONS.items()
                        if spec.totals_per_customer and spec.totals_group == "refunds"))


def _whole_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def amount_of(details: Mapping[str, Any], result: Any) -> int:
    """`coalesce(details.amount_cents, execution_result.amount, 0)`, as the exact query reads it."""
    amount = _whole_int(details.get("amount_cents"))
    if amount is None and isinstance(result, Mapping):
        amount = _whole_int(result.get("amount"))
    return amount or 0


def currency_key(value: Any) -> str:
    return value if isinstance(value, str) and len(value) <= MAX_CURRENCY else ""


def contributions(approval: Any) -> dict[Key, Sums]:
    """What `approval` adds to each counter now: nothing unless it is pending or approved."""
    if approval.status not in COUNTED:
        return {}
    details = approval.details if isinstance(approval.details, Mapping) else {}
    sums = (1, amount_of(details, approval.execution_result))
    currency = currency_key(details.get("currency"))
    added = {("connection", approval.connection_id, approval.action, currency): sums}
    customer = details.get("customer_id")
    if approval.action in customer_actions() and isinstance(customer, str) and customer:
        added[("customer", customer, approval.action, currency)] = sums
    return added


def utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def bucket_start(at: datetime, span: int) -> datetime:
    at = utc(at)
    return at.replace(minute=0 if span == HOUR else at.minute, second=0, microsecond=0)


def bucket_end_or_same(at: datetime, span: int) -> datetime:
    """The first bucket boundary at or after `at`."""
    start = bucket_start(at, span)
    return start if start == utc(at) else start + timedelta(seconds=span)
