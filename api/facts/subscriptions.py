"""cancel_subscription / update_subscription against the subscription, its items and prices, and
Stripe's preview of the next invoice with the proposed change."""

import asyncio
from datetime import datetime
from typing import Any

from api.execution.gateway import StripeFinal
from api.facts.common import check_mode, named
from api.facts.models import Contradicted, Verification, iso_unix
from api.facts.reader import FactsReader

ENDED = ("canceled", "incomplete_expired")


def _item(item: dict[str, Any]) -> dict[str, Any]:
    price = item.get("price") or {}
    product = price.get("product")
    return {"id": item["id"], "price": price.get("id"), "unit_amount": price.get("unit_amount"),
            "product": product.get("id") if isinstance(product, dict) else product,
            "quantity": item.get("quantity"), "interval": (price.get("recurring") or {}).get("interval")}


async def _check_items(reader: FactsReader, subscription: dict[str, Any], changes: list[dict[str, Any]]) -> None:
    existing = {item["id"] for item in subscription["items"]["data"]}
    for index, change in enumerate(changes):
        if change.get("id") and change["id"] not in existing:
            raise Contradicted(f"items.{index}.id", "is not an item of this subscription")
        if change.get("price"):
            field = f"items.{index}.price"
            price = await named(reader.price(change["price"]), reader, field, "price")
            if not price.get("active", True):
                raise Contradicted(field, "is an archived price")
            if price.get("currency") != subscription["currency"]:
                raise Contradicted(field, f"is in {str(price.get('currency')).upper()}, but the subscription "
                                          f"bills in {subscription['currency'].upper()}")


def _preview_params(subscription_id: str, details: dict[str, Any]) -> dict[str, Any] | None:
    if "items" not in details and "proration_behavior" not in details:
        return None
    params: dict[str, Any] = {"subscription": subscription_id}
    if details.get("items"):
        params["subscription_items"] = [
            {key: value for key, value in item.items() if key in ("id", "price", "quantity", "deleted")}
            for item in details["items"]]
    if details.get("proration_behavior"):
        params["subscription_proration_behavior"] = details["proration_behavior"]
    return params


async def _upcoming(reader: FactsReader, params: dict[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    try:
        return await reader.upcoming_invoice(params)
    except StripeFinal:
        return None  # no next invoice (ending, paused): nothing to preview


async def verify_subscription(reader: FactsReader, details: dict[str, Any], now: datetime, *,
                              fresh: bool = False) -> Verification:
    subscription_id = details["subscription_id"]
    subscription = await named(reader.subscription(subscription_id, fresh=fresh), reader, "subscription_id",
                               "subscription")
    status = subscription["status"]
    if status in ENDED:
        raise Contradicted("subscription_id", f"is {status}; it can no longer be changed")
    await _check_items(reader, subscription, details.get("items") or [])
    upcoming, preview = await asyncio.gather(
        _upcoming(reader, {"subscription": subscription_id}),
        _upcoming(reader, _preview_params(subscription_id, details)))
    if preview is not None:
        check_mode(preview, reader, "subscription_id", "invoice")
    lines = ((preview or {}).get("lines") or {}).get("data") or []
    facts = {
        "subscription": {
            "id": subscription_id, "status": status, "customer": subscription.get("customer"),
            "currency": subscription["currency"],
            "current_period_end": iso_unix(subscription.get("current_period_end")),
            "cancel_at_period_end": bool(subscription.get("cancel_at_period_end")),
            "items": [_item(item) for item in subscription["items"]["data"]]},
        "next_invoice": None if upcoming is None else {
            "date": iso_unix(upcoming.get("next_payment_attempt") or upcoming.get("period_end")),
            "amount": upcoming.get("amount_due"), "currency": upcoming.get("currency")},
        "preview": None if preview is None else {
            "amount_due": preview.get("amount_due"), "currency": preview.get("currency"),
            "proration_amount": sum(line.get("amount", 0) for line in lines if line.get("proration"))},
    }
    warnings = []
    if subscription.get("cancel_at_period_end"):
        warnings.append("subscription is already set to cancel at the end of its period")
    if subscription.get("pause_collection"):
        warnings.append("subscription's collection is paused")
    return Verification("verified", reader.livemode, now, facts, warnings)
