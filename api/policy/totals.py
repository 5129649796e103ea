"""The velocity variables a condition reads as `totals.<scope>.<name>`.

The policy only declares their shape; the caller fills them from the database before evaluating.
What counts, for every total:

* the window is the 24 hours before the request being decided, which is itself never counted;
* an approval counts when it is pending or approved (executed or not, whoever approved it);
  rejected, expired and cancelled approvals do not;
* sums are in the minor unit of the request's own currency and add only approvals in that currency
  (adding yen to dollars means nothing); an approval without `amount_cents` (a whole refund) adds
  its executed amount when known, otherwise 0, and always adds 1 to the counts.

Scopes: `connection` is the asking Connection; `customer` is every Connection's approvals for the
request's `details.customer_id` (one Stripe account serves them all, so an agent cannot spread a
customer's refunds over several keys; all zeros when the request names no customer); `action` is
the asking Connection's approvals of the same action.
"""

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class ConnectionTotals:
    refunds_24h_count: int = 0
    refunds_24h_cents: int = 0
    payouts_24h_count: int = 0
    payouts_24h_cents: int = 0


@dataclass(frozen=True, slots=True)
class CustomerTotals:
    refunds_24h_count: int = 0
    refunds_24h_cents: int = 0


@dataclass(frozen=True, slots=True)
class ActionTotals:
    count_24h: int = 0
    amount_24h_cents: int = 0


@dataclass(frozen=True, slots=True)
class Totals:
    connection: ConnectionTotals = field(default_factory=ConnectionTotals)
    customer: CustomerTotals = field(default_factory=CustomerTotals)
    action: ActionTotals = field(default_factory=ActionTotals)

    def as_variables(self) -> dict[str, dict[str, int]]:
        """The nested mapping a CEL condition sees as `totals` (built by hand: `asdict` deep-copies
        field by field, and this runs on every request a policy with totals decides)."""
        return {"connection": {f: getattr(self.connection, f) for f in _FIELDS["connection"]},
                "customer": {f: getattr(self.customer, f) for f in _FIELDS["customer"]},
                "action": {f: getattr(self.action, f) for f in _FIELDS["action"]}}


def empty_totals() -> Totals:
    """All zeros: for callers without history (tests, a first request, `policy check`)."""
    return _EMPTY  # frozen all the way down, so one instance serves every caller


_EMPTY = Totals()

# scope → names, for the load-time check of `totals.<scope>.<name>`.
TOTALS_FIELDS: dict[str, frozenset[str]] = {
    "connection": frozenset(f.name for f in fields(ConnectionTotals)),
    "customer": frozenset(f.name for f in fields(CustomerTotals)),
    "action": frozenset(f.name for f in fields(ActionTotals)),
}
# The same, in declaration order (as `asdict` gave them), for `Totals.as_variables`.
_FIELDS: dict[str, tuple[str, ...]] = {scope: tuple(f.name for f in fields(kind)) for scope, kind in
                                       (("connection", ConnectionTotals), ("customer", CustomerTotals),
                                        ("action", ActionTotals))}


def totals_variables(totals: "Totals | dict[str, Any]") -> dict[str, Any]:
    """Accept the dataclass or an already-built mapping (as a caller reading JSON might have).

    A mapping is passed through as it is, not merged over zeros: a total the caller forgot must
    make the rules that read it fail (and go to review), never read as a reassuring 0.
    """
    return totals.as_variables() if isinstance(totals, Totals) else dict(totals)
