"""What every catalogue action is: validation, reviewer edits, and the Stripe call.

An action is a subclass of `ActionSpec` with its details model, the fields a reviewer may
change, and `run()`, which turns validated details into one gateway call. The service, the
policy, Slack and the CLI only ever see this interface.
"""

import copy
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ValidationError

from api.errors import ValidationFailed
from api.execution.gateway import StripeGateway
from api.money import MAX_AMOUNT_TEXT, MAX_WHOLE_DIGITS, SYMBOLS, format_money, parse_major

EditKind = Literal["amount", "choice", "bool", "quantity"]


@dataclass(frozen=True)
class EditableField:
    """A detail a reviewer may change. `name` is a dotted path into the details
    (`amount_cents`, `items.0.quantity`)."""

    name: str
    label: str
    kind: EditKind
    choices: tuple[str, ...] = ()
    lower_only: bool = False
    # What the action does when the field is left empty, for reviewers ("a full refund"); "" when
    # the field is required.
    when_empty: str = ""


@dataclass(frozen=True)
class ExecutionOutcome:
    stripe_object_id: str | None
    result: dict[str, Any] = field(default_factory=dict)


class EditRejected(ValidationFailed):
    """A reviewer's edit that cannot be applied; answered as 422 with `loc: ["edits", field]`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"the edit of {field} was rejected: {message}",
                         errors=[{"loc": ["edits", field], "msg": message}])
        self.field = field
        self.message = message


def _path(name: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in name.split(".")]


def _get(details: dict[str, Any], name: str) -> Any:
    node: Any = details
    for part in _path(name):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _set(details: dict[str, Any], name: str, value: Any) -> None:
    *parents, last = _path(name)
    node: Any = details
    for part in parents:
        node = node[part]
    node[last] = value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class ActionSpec(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    details_model: ClassVar[type[BaseModel]]
    read_only: ClassVar[bool] = False
    editable: ClassVar[tuple[EditableField, ...]] = ()
    # The velocity totals (`totals.*`, api/policy/totals.py) this action's requests add to, besides
    # `totals.action`: "refunds" or "payouts" of the asking Connection, and with `totals_per_customer`
    # the refunds of `details.customer_id` from every Connection too.
    totals_group: ClassVar[Literal["refunds", "payouts"] | None] = None
    totals_per_customer: ClassVar[bool] = False
    # Several of these requests named together ("Refunds from support-agent"); "" reads the title.
    plural: ClassVar[str] = ""
    # Money leaves the account when it is approved: "Approve all" covers it only under a ceiling.
    moves_money: ClassVar[bool] = False
    # The Stripe object it creates or changes ("refund", "payout", "dispute") whose later outcomes
    # Stripe's webhooks report; None when no later outcome is followed.
    stripe_object: ClassVar[str | None] = None
    # The action's family ("refund", "payout", "subscription", "dispute"): which of Stripe's facts are
    # read before review (`api/facts`) and how its details are laid out for reviewers. None: a lookup.
    family: ClassVar[str | None] = None

    # -- how it reads ---------------------------------------------------------------------------

    def headline(self, details: dict[str, Any]) -> str:
        """The request in a few words with its money, plain text: `Refund $349.00 USD`."""
        return self.name.replace("_", " ").capitalize()

    def group_words(self) -> str:
        return self.plural or self.title

    # -- validation ---------------------------------------------------------------------------

    def validate_details(self, details: Any) -> dict[str, Any]:
        """The details as given (unset fields left out), normalised, JSON-able; or ValidationFailed."""
        return self._model(details).model_dump(mode="json", exclude_unset=True)

    def _model(self, details: Any) -> BaseModel:
        if not isinstance(details, dict):
            raise ValidationFailed(f"details are invalid for {self.name}",
                                   errors=[{"loc": ["details"], "msg": "must be an object"}])
        try:
            return self.details_model.model_validate(details)
        except ValidationError as exc:
            raise ValidationFailed(f"details are invalid for {self.name}",
                                   errors=[self._error(e) for e in exc.errors()]) from None

    def _error(self, error: Any) -> dict[str, Any]:
        loc = ["details", *error["loc"]]
        if error["type"] == "extra_forbidden" and len(error["loc"]) > 1:
            msg = "is not a field Stripe accepts here"
        elif error["type"] == "extra_forbidden":
            known = ", ".join(self.details_model.model_fields)
            msg = f"is not a field of {self.name}" + (f" (fields: {known})" if known else "")
        elif error["type"] == "missing":
            msg = "is required"
        else:
            msg = error["msg"]
        return {"loc": loc, "msg": msg}

    def currency(self, details: dict[str, Any]) -> str | None:
        """The currency of the money in these details, where the details say it."""
        value = details.get("currency") if isinstance(details, dict) else None
        return value.lower() if isinstance(value, str) else None

    # -- reviewer edits -----------------------------------------------------------------------

    def editable_for(self, details: dict[str, Any]) -> tuple[EditableField, ...]:
        """The concrete editable fields for these details (item fields are per item)."""
        return self.editable

    def apply_edits(self, details: dict[str, Any],
                    edits: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply edits given in canonical units; returns (whole edited details, changes)."""
        current = self.validate_details(details)
        fields = {f.name: f for f in self.editable_for(current)}
        modified = copy.deepcopy(current)
        changes: dict[str, Any] = {}
        for name, value in edits.items():
            spec = fields.get(name)
            if spec is None:
                raise EditRejected(name, self._not_editable(name))
            old = _get(current, name)
            self._check_edit(spec, value, old)
            _set(modified, name, value)
            if value != old:
                changes[name] = {"from": old, "to": value}
        try:
            modified = self.validate_details(modified)
        except ValidationFailed as exc:
            first = (exc.errors or [{"msg": exc.detail}])[0]
            raise EditRejected(next(iter(edits), "details"), first["msg"]) from None
        return modified, changes

    def _not_editable(self, name: str) -> str:
        if not self.editable:
            return f"{self.name} has no fields a reviewer may change"
        names = ", ".join(f.name for f in self.editable)
        return f"is not editable for {self.name} (editable: {names})"

    def _check_edit(self, spec: EditableField, value: Any, old: Any) -> None:
        if spec.kind in ("amount", "quantity"):
            if not _is_int(value):
                unit = "minor units" if spec.kind == "amount" else "items"
                raise EditRejected(spec.name, f"must be a whole number of {unit}")
            if spec.kind == "amount" and value <= 0:
                raise EditRejected(spec.name, "must be greater than zero")
            if spec.kind == "quantity" and value < 1:
                raise EditRejected(spec.name, "must be at least 1")
            if spec.lower_only and old is not None and value > old:
                raise EditRejected(spec.name, f"can only be lowered (at most {old})")
        elif spec.kind == "choice":
            if value not in spec.choices:
                raise EditRejected(spec.name, f"must be one of {', '.join(spec.choices)}")
        elif spec.kind == "bool" and not isinstance(value, bool):
            raise EditRejected(spec.name, "must be true or false")

    async def check_edits(self, gateway: StripeGateway, details: dict[str, Any], edits: dict[str, Any]) -> None:
        """Limits only Stripe knows (what is still refundable), checked before a reviewer's edit is
        recorded. Raises EditRejected, or UpstreamUnavailable when Stripe cannot be asked. Nothing here
        by default; only called when Stripe is configured (otherwise the execution fails, clearly)."""
        return None

    async def stripe_currency(self, gateway: StripeGateway, details: dict[str, Any]) -> str | None:
        """The currency of the money these details move, asked of Stripe when the details do not
        say it (a refund takes its charge's). None when Stripe has nothing to add."""
        return None

    def parse_edit(self, field: str, text: str, currency: str | None) -> Any:
        """Turn an operator's typed value (`--set amount_cents=17450`) into the canonical value.

        Amounts: digits alone are minor units (the field is `amount_cents`); a decimal point or a
        currency symbol means major units, which needs the currency (`174.50` → 17450 in USD).
        Raises ValueError with a message fit to show the operator.
        """
        spec = self._field_named(field)
        if spec is None:
            raise ValueError(f"{field} {self._not_editable(field)}")
        text = text.strip()
        if spec.kind == "amount":
            return _parse_amount(field, text, currency)
        if spec.kind == "quantity":
            if not re.fullmatch(r"\d+", text) or int(text) < 1:
                raise ValueError(f"{field} must be a whole number of at least 1, not “{text}”.")
            return int(text)
        if spec.kind == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(f"{field} must be true or false, not “{text}”.")
        if text not in spec.choices:
            raise ValueError(f"{field} must be one of {', '.join(spec.choices)}, not “{text}”.")
        return text

    def _field_named(self, name: str) -> EditableField | None:
        for spec in self.editable:
            template = re.escape(spec.name).replace(re.escape("<index>"), r"\d+")
            if re.fullmatch(template, name):
                return spec
        return None

    # -- execution ----------------------------------------------------------------------------

    async def execute(self, gateway: StripeGateway, details: dict[str, Any], *,
                      idempotency_key: str) -> ExecutionOutcome:
        """Make the Stripe call. Raises ValidationFailed (details no longer valid) or the
        gateway's StripeRetryable / StripeFinal / StripeNotConfigured."""
        return await self.run(gateway, self._model(details), idempotency_key)

    @abstractmethod
    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        """The action's own Stripe call, with validated details."""

    async def earlier_outcome(self, gateway: StripeGateway, details: dict[str, Any]) -> ExecutionOutcome | None:
        """Asked when a repeated execution (an earlier attempt may have reached Stripe and its
        answer been lost) is refused: what the earlier attempt did, where Stripe cannot replay it
        under the idempotency key (it keeps none for DELETE). None: nothing to recover."""
        return None


def money_text(amount_minor: Any, currency: Any) -> str:
    """`$349.00 USD`; without a known currency the bare minor-unit count, never a guess."""
    if not _is_int(amount_minor):
        return str(amount_minor)
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency, re.ASCII):
        return f"{amount_minor:,} (minor units, currency not given)"
    return format_money(amount_minor, currency)


def without_none(params: dict[str, Any]) -> dict[str, Any]:
    """Stripe parameters with the unset ones left out."""
    return {key: value for key, value in params.items() if value is not None}


def _parse_amount(field: str, text: str, currency: str | None) -> int:
    """An operator's `--set amount_cents=…`: ASCII digits alone are minor units; anything else is
    read as a major-unit amount by the same rules as Slack's edit modal (`parse_major`)."""
    if len(text) > MAX_AMOUNT_TEXT:
        raise ValueError(f"{field} is too long ({len(text)} characters); give a whole number such as 17450.")
    if re.fullmatch(r"[0-9]+", text, re.ASCII):
        if len(text.lstrip("0")) > MAX_WHOLE_DIGITS:
            raise ValueError(f"{field} is far larger than any amount: “{text}”.")
        if int(text) <= 0:
            raise ValueError(f"{field} must be greater than zero.")
        return int(text)
    if currency is None:
        raise ValueError(f"The currency is not known, so give {field} in minor units "
                         f"(a whole number such as 17450), not “{text}”.")
    try:
        minor = parse_major(text, currency)
    except ValueError as problem:
        raise ValueError(f"{field} must be a whole number of minor units such as 17450, or a major-unit "
                         f"amount such as 174.50: {problem}") from None
    if "." not in text and text[:1] not in SYMBOLS.values():
        # `1,000` could be minor or major units; a money command does not guess.
        raise ValueError(f"{field} “{text}” is ambiguous: give a whole number of minor units (17450) "
                         f"or a major-unit amount with a decimal point (174.50).")
    return minor
