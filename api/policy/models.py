"""The policy file as typed models (CONTRACT §6). Shapes and single-field rules live here;
checks that span fields or rules (unique names, `pass` only for reads, …) are in `checks.py`,
which knows where in the file each value was written."""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, StringConstraints

from api.approvals.enums import PolicyVerdict
from api.policy.reviewing import BusinessHours

Decision = PolicyVerdict  # a rule's `decision:`; the file spells the values

_DURATION = re.compile(r"^\s*(-?\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """"90s", "15m", "24h", "7d". A bare number is refused: seconds or hours would be a guess."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a duration such as 90s, 15m, 24h or 7d, not {value!r}")
    amount = int(match.group(1))
    if amount <= 0:
        raise ValueError(f"a duration must be positive, not {value!r}")
    return timedelta(seconds=amount * _UNIT_SECONDS[match.group(2)])


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

# Slack user (U…, W… on Enterprise Grid) and user-group (S…) IDs; a name or an e-mail would
# never match a clicking user's ID, so it is refused rather than silently locking everyone out.
SlackId = Annotated[str, StringConstraints(pattern=r"^[UWS][A-Z0-9]{2,}$")]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# Strict: YAML's `true` or "2" is not a count of approvals.
Count = Annotated[int, Strict(), Field(ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    """Used by review rules that leave a setting out, and when no rule matches."""

    approvers: list[SlackId] = Field(default_factory=list)
    required_approvals: Count = 1
    expires_in: Duration = timedelta(hours=24)
    # The bound on a request's own `expiresAt`, and on every rule's `expires_in`.
    max_expires_in: Duration = timedelta(days=7)
    # Still undecided this long after it was asked: `escalate_to` is mentioned, the approvers DMed.
    escalate_after: Duration | None = None
    escalate_to: list[SlackId] | None = None
    business_hours: BusinessHours | None = None  # escalations wait for them when set


class Rule(_Strict):
    name: NonEmpty
    actions: list[NonEmpty] | None = None  # None: any action
    when: str | None = None  # CEL; None: always
    decision: Decision
    note: NonEmpty | None = None  # required for reject; the decision note for approve and reject
    approvers: list[SlackId] | None = None
    required_approvals: Count | None = None
    expires_in: Duration | None = None
    # Slack digests of this rule's requests offer "Approve all"; each item is still its own decision.
    bulk: StrictBool = False
    bulk_ceiling: Count | None = None  # minor units; above it an item is left out of "Approve all"
    escalate_after: Duration | None = None
    escalate_to: list[SlackId] | None = None
    business_hours: BusinessHours | None = None


class PolicyFile(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[Rule] = Field(default_factory=list)
