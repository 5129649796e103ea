"""issue_refund against the charge it names: currency, customer, refundable amount, context.

Facts: the charge (amount, date and age, already refunded, still refundable, dispute, Radar risk,
card) and its customer (name, email, refunds in the last 90 days). See docs/stripe-facts.md.
"""

import asyncio
from datetime import datetime, timedelta
from typing import Any

from api.execution.gateway import StripeFinal
from api.facts.common import age_days, named, plural
from api.facts.models import Contradicted, Verification, iso_unix
from api.facts.reader import FactsReader
from api.money import format_money

OLD_CHARGE_DAYS = 60
MANY_REFUNDS = 3
RISKY = ("elevated", "highest")
WINDOW = timedelta(days=90)


async def _charge(reader: FactsReader, details: dict[str, Any], fresh: bool) -> tuple[dict[str, Any], str]:
    if details.get("charge_id"):
        field = "charge_id"
        return await named(reader.charge(details["charge_id"], fresh=fresh), reader, field, "charge"), field
    field = "payment_intent_id"
    intent = await named(reader.payment_intent(details[field], fresh=fresh), reader, field, "payment intent")
    latest = intent.get("latest_charge")
    latest = latest.get("id") if isinstance(latest, dict) else latest
    if not latest:
        raise Contradicted(field, "has no successful charge to refund")
    return await named(reader.charge(latest, fresh=fresh), reader, field, "charge"), field


def refundable(charge: dict[str, Any]) -> int:
    captured = charge.get("amount_captured", charge["amount"]) if charge.get("captured", True) else 0
    return max(captured - charge.get("amount_refunded", 0), 0)


def _payment_method(charge: dict[str, Any]) -> dict[str, Any] | None:
    card = (charge.get("payment_method_details") or {}).get("card")
    if not card:
        return None
    return {"brand": card.get("brand"), "last4": card.get("last4"), "country": card.get("country")}


async def _dispute_status(reader: FactsReader, charge: dict[str, Any]) -> str | None:
    if not charge.get("disputed"):
        return None
    page = await reader.disputes_of_charge(charge["id"])
    return page["data"][0]["status"] if page.get("data") else None


def _refunds_since(charges: dict[str, Any], currency: str, since: datetime) -> dict[str, int]:
    """The customer's refunds created since `since`; the amount adds only those in `currency`."""
    count = amount = 0
    cutoff = int(since.timestamp())
    for charge in charges.get("data", []):
        for refund in ((charge.get("refunds") or {}).get("data") or []):
            if refund.get("created", 0) >= cutoff and refund.get("status") not in ("failed", "canceled"):
                count += 1
                amount += refund["amount"] if refund.get("currency") == currency else 0
    return {"count": count, "amount": amount}


async def _customer(reader: FactsReader, customer_id: str, currency: str, now: datetime) -> dict[str, Any]:
    try:
        customer, charges = await asyncio.gather(reader.customer(customer_id), reader.customer_charges(customer_id))
    except StripeFinal as exc:
        if exc.http_status != 404:
            raise
        customer, charges = {}, {}  # deleted since the charge: its refunds are not listed any more
    return {"id": customer_id, "name": customer.get("name"), "email": customer.get("email"),
            "refunds_90d": _refunds_since(charges, currency, now - WINDOW)}


async def verify_refund(reader: FactsReader, details: dict[str, Any], now: datetime, *,
                        fresh: bool = False) -> Verification:
    charge, target = await _charge(reader, details, fresh)
    currency = charge["currency"]
    fills: dict[str, Any] = {}
    claimed = details.get("currency")
    if claimed is None:
        fills["currency"] = currency
    elif claimed.lower() != currency:
        raise Contradicted("currency", f"is {claimed.upper()}, but the charge is in {currency.upper()}")
    owner = charge.get("customer")
    owner = owner.get("id") if isinstance(owner, dict) else owner
    claimed_customer = details.get("customer_id")
    if claimed_customer is not None and claimed_customer != owner:
        whose = f"belongs to customer {owner}" if owner else "has no customer"
        raise Contradicted("customer_id", f"does not match the charge, which {whose}")
    if claimed_customer is None and owner:
        fills["customer_id"] = owner
    left = refundable(charge)
    if left <= 0:
        raise Contradicted(target, "the charge has already been fully refunded")
    amount = details.get("amount_cents")
    if amount is not None and amount > left:
        raise Contradicted("amount_cents", f"is more than the {format_money(left, currency)} still refundable "
                                           f"on the charge")
    # One after the other: the dispute is read only for a disputed charge, and the customer's two
    # reads are made together; on the cached path this spares scheduling tasks for nothing.
    dispute_status = await _dispute_status(reader, charge)
    customer = await _customer(reader, owner, currency, now) if owner else None
    age = age_days(charge.get("created"), now)
    risk = (charge.get("outcome") or {}).get("risk_level")
    facts = {
        "charge": {"id": charge["id"], "amount": charge["amount"], "currency": currency,
                   "created": iso_unix(charge.get("created")), "age_days": age,
                   "amount_refunded": charge.get("amount_refunded", 0), "refundable": left,
                   "disputed": bool(charge.get("disputed")), "dispute_status": dispute_status,
                   "risk_level": risk, "payment_method": _payment_method(charge)},
        "customer": customer,
    }
    warnings = []
    if age is not None and age > OLD_CHARGE_DAYS:
        warnings.append(f"charge is {age} days old")
    if charge.get("disputed"):
        warnings.append("charge is disputed" + (f" ({dispute_status})" if dispute_status else ""))
    if risk in RISKY:
        warnings.append(f"Radar risk level is {risk}")
    if customer and customer["refunds_90d"]["count"] >= MANY_REFUNDS:
        warnings.append(f"customer already refunded {plural(customer['refunds_90d']['count'], 'time')} "
                        f"in the last 90 days")
    return Verification("verified", reader.livemode, now, facts, warnings, fills)
