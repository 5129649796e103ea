"""What every family's verification shares: reading one object the request names, and its mode."""

from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from api.execution.gateway import StripeFinal
from api.facts.models import Contradicted, from_unix
from api.facts.reader import FactsReader


async def named(read: Awaitable[dict[str, Any]], reader: FactsReader, field: str, kind: str) -> dict[str, Any]:
    """The object a detail names, or `Contradicted` when Stripe has no such object in this mode."""
    try:
        obj = await read
    except StripeFinal as exc:
        if exc.http_status == 404 or exc.code == "resource_missing":
            raise Contradicted(field, f"Stripe has no such {kind}") from None
        raise
    check_mode(obj, reader, field, kind)
    return obj


def check_mode(obj: dict[str, Any], reader: FactsReader, field: str, kind: str) -> None:
    livemode = obj.get("livemode")
    if isinstance(livemode, bool) and livemode != reader.livemode:
        mine, theirs = ("live", "test") if reader.livemode else ("test", "live")
        raise Contradicted(field, f"is a {theirs}-mode {kind}; this Stripe key is in {mine} mode")


def age_days(created: int | None, now: datetime) -> int | None:
    moment = from_unix(created)
    return (now - moment).days if moment is not None else None


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
