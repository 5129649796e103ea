"""How a review rule is worked in Slack: bulk approval, escalation and business hours.

These settings change who is told and how many clicks a group takes; they never change who may
decide or how many approvals a request needs.
"""

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.actions import ACTIONS

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# Actions whose requests move money out: `bulk: true` on them is bounded by a ceiling (minor units
# of the request's currency), so "Approve all" can never cover a large refund or payout.
MONEY_ACTIONS = frozenset(name for name, spec in ACTIONS.items() if spec.moves_money)
DEFAULT_BULK_CEILING = 10_000  # $100.00, €100.00, ¥10,000

ClockTime = Annotated[str, Field(pattern=_CLOCK.pattern)]


class BusinessHours(BaseModel):
    """When escalations may go out; one outside them waits for the next opening."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    days: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1)
    start: ClockTime = "09:00"
    end: ClockTime = "17:00"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/London)") from exc
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: str, info: object) -> str:
        start = getattr(info, "data", {}).get("start")
        if start is not None and value <= start:
            raise ValueError(f"end ({value}) must be later than start ({start})")
        return value

    def next_open(self, moment: datetime) -> datetime:
        """`moment` when it falls within business hours, otherwise the next opening (in UTC)."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        opens, closes = _clock(self.start), _clock(self.end)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            if _WEEKDAYS[day.weekday()] not in self.days:
                continue
            start = datetime.combine(day, opens, zone)
            end = datetime.combine(day, closes, zone)
            if offset == 0 and start <= local < end:
                return moment
            if local < start:
                return start.astimezone(moment.tzinfo)
        return moment  # unreachable with at least one day listed; never hold an escalation forever


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


_AMOUNT_BOUND = re.compile(r"details\.amount_cents\s*(<=|<)\s*(\d+)")


def condition_amount_bound(when: str | None) -> int | None:
    """The largest amount (minor units) a `when` lets through, when it says so plainly: a
    conjunction holding `details.amount_cents <= N` (or `< N`). None when it cannot be read off."""
    if not when or "||" in when or "!" in when.replace("!=", ""):
        return None
    bounds = [int(n) - (1 if op == "<" else 0) for op, n in _AMOUNT_BOUND.findall(when)]
    return min(bounds) if bounds else None
