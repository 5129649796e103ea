"""Field types shared by the catalogue's details models.

Every model is strict: an amount sent as `"34900"` or `349.0` is refused rather than coerced,
because a silently converted amount is the worst kind of mistake a money service can make.
"""

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError


class Details(BaseModel):
    """Base of every details model: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _amount(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError(
            "amount_type",
            "must be an integer number of minor units (e.g. 34900 for 349.00 USD), not {kind}",
            {"kind": _kind(value)},
        )
    if value <= 0:
        raise PydanticCustomError("amount_positive", "must be greater than zero")
    return value


def _quantity(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("quantity_type", "must be a whole number, not {kind}",
                                  {"kind": _kind(value)})
    if value < 1:
        raise PydanticCustomError("quantity_positive",
                                  "must be at least 1 (to remove an item, set deleted: true)")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise PydanticCustomError("currency", "must be a three-letter ISO currency code such as usd")
    return value.lower()


def _metadata(value: Any) -> dict[str, str]:
    # Stripe's own limits, checked here so an agent hears about them before anyone reviews.
    if not isinstance(value, dict):
        raise PydanticCustomError("metadata_type", "must be an object of string keys and string values")
    if len(value) > 50:
        raise PydanticCustomError("metadata_size", "can have at most 50 keys")
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 40 or "[" in key or "]" in key:
            raise PydanticCustomError(
                "metadata_key", "keys must be 1 to 40 characters without square brackets ('{key}')",
                {"key": key})
        if not isinstance(item, str) or len(item) > 500:
            raise PydanticCustomError(
                "metadata_value", "values must be strings of at most 500 characters ('{key}')",
                {"key": key})
    return value


Amount = Annotated[int, BeforeValidator(_amount)]
Quantity = Annotated[int, BeforeValidator(_quantity)]
Currency = Annotated[str, BeforeValidator(_currency)]
Metadata = Annotated[dict[str, str], BeforeValidator(_metadata)]


def stripe_id(what: str, *prefixes: str) -> Any:
    """A Stripe object id; with prefixes, one that starts with one of them (`ch_`, `sub_`, …).

    Catching a payment intent id passed as a charge id here saves a review of a doomed request.
    """
    shown = " or ".join(f"{prefix}…" for prefix in prefixes)

    def check(value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,255}", value):
            raise PydanticCustomError("stripe_id", "must be a Stripe {what} id", {"what": what})
        if prefixes and not value.startswith(prefixes):
            raise PydanticCustomError("stripe_id_prefix", "must be a Stripe {what} id ({shown})",
                                      {"what": what, "shown": shown})
        return value

    return Annotated[str, BeforeValidator(check)]


ChargeId = stripe_id("charge", "ch_", "py_")
PaymentIntentId = stripe_id("payment intent", "pi_")
CustomerId = stripe_id("customer", "cus_")
SubscriptionId = stripe_id("subscription", "sub_")
SubscriptionItemId = stripe_id("subscription item", "si_")
DisputeId = stripe_id("dispute", "dp_", "du_")
# Prices may be legacy plans with ids the merchant chose, and payout destinations are bank
# accounts, cards or newer payout methods: no prefix to insist on.
PriceId = stripe_id("price")
DestinationId = stripe_id("payout destination")
