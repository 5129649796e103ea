"""The names a policy condition may read under `stripe` (see docs/policy.md).

`stripe` is the approval's `stripeFacts` with the facts lifted to the top: `stripe.status`,
`stripe.warnings`, `stripe.charge.age_days`, … A request verified against nothing (Stripe not
configured, a lookup) reads `stripe.status == "none"` and has no facts: a condition reading one
fails for it, and a failed condition never approves.
"""

from collections.abc import Mapping
from typing import Any

# top-level name → its fields (None: a plain value).
STRIPE_FIELDS: dict[str, frozenset[str] | None] = {
    "status": None, "verifiedAt": None, "livemode": None, "warnings": None,
    "charge": frozenset({"id", "amount", "currency", "created", "age_days", "amount_refunded", "refundable",
                         "disputed", "dispute_status", "risk_level", "payment_method"}),
    "customer": frozenset({"id", "name", "email", "refunds_90d"}),
    "balance": frozenset({"currency", "available", "pending"}),
    "destination": frozenset({"id", "type", "bank_name", "last4"}),
    "subscription": frozenset({"id", "status", "customer", "currency", "current_period_end",
                               "cancel_at_period_end", "items"}),
    "next_invoice": frozenset({"date", "amount", "currency"}),
    "preview": frozenset({"amount_due", "currency", "proration_amount"}),
    "dispute": frozenset({"id", "status", "reason", "amount", "currency", "evidence_due_by", "charge"}),
}

NOTHING_VERIFIED: dict[str, Any] = {"status": "none", "verifiedAt": None, "livemode": False, "warnings": []}


def stripe_variable(document: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a condition sees as `stripe`, from a stored or fresh `stripeFacts` document."""
    if not document:
        return dict(NOTHING_VERIFIED)
    facts = document.get("facts") or {}
    return {**facts, "status": document.get("status"), "verifiedAt": document.get("verifiedAt"),
            "livemode": bool(document.get("livemode")), "warnings": list(document.get("warnings") or [])}
