"""What verification against Stripe produces: the facts document stored on an approval.

`stripeFacts` (CONTRACT §8) is `Verification.document()`: its status, when it was read, the key's
mode, the facts per action family and short warnings for reviewers. A request that contradicts
Stripe never gets a document: verification raises `Contradicted` naming the field.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["verified", "unverified"]


class Contradicted(Exception):
    """The request says something Stripe's objects do not: `field` is the path inside `details`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_error(self) -> dict[str, Any]:
        loc: list[str | int] = ["details", *(int(p) if p.isdigit() else p for p in self.field.split("."))]
        return {"loc": loc, "msg": self.message}


class Unreachable(Exception):
    """Stripe could not be asked now (timeout, 5xx, 429, an unexpected refusal): verify later."""


@dataclass
class Verification:
    status: Status
    livemode: bool
    verified_at: datetime | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Details the agent left out and Stripe knows (a refund's currency and customer): filled in so
    # reviewers, policies and velocity totals see Stripe's values.
    fills: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why it is unverified

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "verifiedAt": iso(self.verified_at),
                                "livemode": self.livemode, "facts": self.facts, "warnings": self.warnings}
        if self.reason is not None:
            body["reason"] = self.reason
        return body


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def from_unix(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int) else None


def iso_unix(seconds: int | None) -> str | None:
    return iso(from_unix(seconds))
