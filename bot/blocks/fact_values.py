"""Stripe's values in words for mrkdwn: money, dates, ids and outside text made safe to show.

Strings in Stripe's objects are typed by people outside (a customer's name at checkout, a bank's
name): they go through `bot.inert.literal`, like every other outside text in our mrkdwn.
"""

import re
from collections.abc import Mapping
from typing import Any

from api.money import format_money
from bot import inert, layout

TEXT_LIMIT = 120
_CURRENCY = re.compile(r"^[a-z]{3}$")
# Stripe ids (`ch_…`, `price_…`, `ba_…`): linked when the dashboard has a page, else shown as code.
_ID = re.compile(r"^[a-z]{2,12}_[A-Za-z0-9_]{1,250}$")

Facts = Mapping[str, Any]


def clean(value: Any, limit: int = TEXT_LIMIT) -> str:
    """Outside text on one line, shown as written: no control or bidi characters, no markup."""
    return inert.literal(value, limit)


def word(value: Any) -> str:
    """A Stripe enum in words: `requested_by_customer` → `requested by customer`."""
    return clean(layout.humanize(value), 60)


def id_or_text(value: Any, test_mode: bool) -> str:
    """A Stripe id linked to its dashboard page (or as code); anything else shown as quoted text."""
    text = str(value)
    if _ID.match(text):
        return layout.stripe_link(text, test_mode=test_mode)
    return f"“{clean(text)}”"


def as_mapping(value: Any) -> Facts:
    return value if isinstance(value, Mapping) else {}


def as_count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def currency_code(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and _CURRENCY.match(value.lower()) else None


def money_text(amount: Any, currency: str | None) -> str | None:
    """Stripe's minor units in words; nothing at all when either half is missing (never a guess)."""
    if currency is None or not isinstance(amount, int) or isinstance(amount, bool):
        return None
    return format_money(amount, currency)


def day_text(value: Any) -> str | None:
    """A date each reader sees in their own time zone (`Nov 2`), with an ISO fallback."""
    moment = layout.parse_time(value)
    if moment is None:
        return None
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}}|{moment.date().isoformat()}>"


def days_ago(days: int) -> str:
    if days == 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"
