"""create_payout against the balance: the currency must hold funds; more than is available is a
warning, and the policy decides (`stripe.balance.available`)."""

from datetime import datetime
from typing import Any

from api.execution.gateway import StripeFinal
from api.facts.common import check_mode
from api.facts.models import Contradicted, Verification
from api.facts.reader import FactsReader

OVER_BALANCE = "payout exceeds available balance"


def _in(amounts: list[dict[str, Any]], currency: str) -> int | None:
    found = [entry["amount"] for entry in amounts if entry.get("currency") == currency]
    return sum(found) if found else None


def _destination(account: dict[str, Any], wanted: str | None, currency: str) -> dict[str, Any] | None:
    candidates = ((account.get("external_accounts") or {}).get("data") or [])
    if wanted is not None:
        chosen = next((item for item in candidates if item.get("id") == wanted), None)
    else:
        chosen = next((item for item in candidates
                       if item.get("currency") == currency and item.get("default_for_currency")), None)
    if chosen is None:
        return None
    return {"id": chosen["id"], "type": chosen.get("object"),
            "bank_name": chosen.get("bank_name") or chosen.get("brand"), "last4": chosen.get("last4")}


async def _account(reader: FactsReader) -> dict[str, Any] | None:
    try:
        return await reader.account()
    except StripeFinal:
        return None  # a restricted key may not read the account: the destination stays unknown


async def verify_payout(reader: FactsReader, details: dict[str, Any], now: datetime, *,
                        fresh: bool = False) -> Verification:
    balance = await reader.balance(fresh=fresh)
    check_mode(balance, reader, "currency", "balance")
    currency = details["currency"]
    available = _in(balance.get("available") or [], currency)
    pending = _in(balance.get("pending") or [], currency)
    if available is None and pending is None:
        raise Contradicted("currency", f"this Stripe account holds no {currency.upper()} balance")
    account = await _account(reader)
    destination = _destination(account, details.get("destination"), currency) if account else None
    if account is not None and details.get("destination") and destination is None:
        raise Contradicted("destination", "is not a payout destination of this Stripe account")
    facts = {"balance": {"currency": currency, "available": available or 0, "pending": pending or 0},
             "destination": destination}
    warnings = [OVER_BALANCE] if details["amount_cents"] > (available or 0) else []
    return Verification("verified", reader.livemode, now, facts, warnings)
