"""The reject and edit modals, and pure readers of what a reviewer submitted in them.

Readers return errors keyed by block_id, ready for `ack(response_action="errors", errors=…)`,
so the view handler only wires them through.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from slack_sdk.models.blocks import (
    Block,
    InputBlock,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from api.money import format_major, format_money, parse_major
from bot import layout
from bot.blocks.common import Approval, context, effective_details, title
from bot.blocks.facts import amount_limit_hint
from bot.ids import ActionId, BlockId, ButtonRef, CallbackId, field_action_id, field_block_id

NOTE_LIMIT = 2000
_YES, _NO = "true", "false"


class EditableFieldLike(Protocol):
    """The shape of `api.actions.EditableField`, so these builders need no domain import."""

    name: str
    label: str
    kind: str  # "amount" | "choice" | "bool" | "quantity"
    choices: tuple[str, ...]
    lower_only: bool
    when_empty: str


def reject_modal(approval: Approval, version: int) -> dict:
    """Asks why; the note is required because the agent and the audit trail both need it."""
    note = InputBlock(
        block_id=BlockId.NOTE,
        label="Why are you rejecting it?",
        hint="The agent receives this note with the decision.",
        element=PlainTextInputElement(action_id=ActionId.NOTE, multiline=True, max_length=NOTE_LIMIT),
    )
    return _modal(CallbackId.REJECT_MODAL, "Reject request", "Reject", approval, version, [note])


def edit_modal(
    approval: Approval,
    version: int,
    editable_fields: Sequence[EditableFieldLike],
    *,
    currency: str | None = None,
) -> dict:
    """One input per changeable field, prefilled with what would run now, and an optional note.

    `currency` overrides the details' own (refunds may not carry one); USD when neither says.
    """
    current = effective_details(approval)
    money_currency = _currency(current, currency)
    stripe_limit = amount_limit_hint(approval)
    inputs: list[Block] = [_field_input(field, current, money_currency, stripe_limit) for field in editable_fields]
    inputs.append(
        InputBlock(
            block_id=BlockId.NOTE,
            label="Note for the agent",
            optional=True,
            element=PlainTextInputElement(action_id=ActionId.NOTE, multiline=True, max_length=NOTE_LIMIT),
        )
    )
    return _modal(CallbackId.EDIT_MODAL, "Edit and approve", "Approve", approval, version, inputs)


def _modal(
    callback_id: str, heading: str, submit: str, approval: Approval, version: int, inputs: Sequence[Block]
) -> dict:
    about = f"*{layout.literal(title(approval, effective_details(approval)), 200)}*"
    if approval.get("summary"):
        about += "\nThe agent's summary: " + layout.literal(approval["summary"], 500)
    view = View(
        type="modal",
        callback_id=callback_id,
        title=heading,
        submit=submit,
        close="Cancel",
        private_metadata=ButtonRef(approval_id=approval.get("approvalId", ""), version=version).dumps(),
        blocks=[context(about), *inputs],
    )
    return view.to_dict()


def _currency(details: Mapping[str, Any], override: str | None) -> str:
    return (override or details.get("currency") or "usd").lower()


def _field_input(
    field: EditableFieldLike, current: Mapping[str, Any], currency: str, stripe_limit: str | None = None
) -> InputBlock:
    value = layout.lookup(current, field.name)
    if field.kind == "amount":
        element = PlainTextInputElement(
            action_id=field_action_id(field.name),
            initial_value=format_major(value, currency) if isinstance(value, int) else None,
            placeholder=f"Leave empty for {field.when_empty}" if value is None and field.when_empty else None,
        )
        label = f"{field.label} ({currency.upper()})"
        capped = field.lower_only and isinstance(value, int)
        hint = " ".join(filter(None, [f"At most {format_money(value, currency)}." if capped else None,
                                      stripe_limit])) or None
    elif field.kind == "quantity":
        element = PlainTextInputElement(
            action_id=field_action_id(field.name), initial_value=None if value is None else str(value)
        )
        label, hint = field.label, ("It can only go down." if field.lower_only else None)
    else:
        element = _select(field, value)
        label, hint = field.label, None
    return InputBlock(
        block_id=field_block_id(field.name), label=label, hint=hint, element=element, optional=value is None
    )


def _select(field: EditableFieldLike, value: Any) -> StaticSelectElement:
    if field.kind == "bool":
        options = [Option(value=_YES, text="Yes"), Option(value=_NO, text="No")]
        chosen = None if value is None else (_YES if value else _NO)
    else:
        options = [Option(value=c, text=layout.humanize(c).capitalize()) for c in field.choices]
        chosen = value if value in field.choices else None
    initial = next((option for option in options if option.value == chosen), None)
    return StaticSelectElement(action_id=field_action_id(field.name), options=options, initial_option=initial)


# -- reading a submission ---------------------------------------------------------------------------


def read_note(view_state_values: Mapping[str, Any]) -> str | None:
    """The reviewer's note, stripped; None when they left it empty."""
    for action_id, state in view_state_values.get(BlockId.NOTE, {}).items():
        if ActionId.NOTE in action_id:
            text = (state.get("value") or "").strip()
            return text or None
    return None


def read_edit_submission(
    view_state_values: Mapping[str, Any],
    editable_fields: Sequence[EditableFieldLike],
    currency: str,
    *,
    current_details: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(edits in canonical units, errors by block_id). Empty inputs are no edit.

    With `current_details`, lower-only fields are checked against what would run now.
    """
    edits: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in editable_fields:
        block_id = field_block_id(field.name)
        state = view_state_values.get(block_id, {}).get(field_action_id(field.name), {})
        try:
            value = _read_field(field, state, currency)
            if value is None:
                continue
            _check_lower_only(field, value, layout.lookup(current_details or {}, field.name), currency)
        except ValueError as problem:
            errors[block_id] = str(problem)
            continue
        edits[field.name] = value
    return edits, errors


def _read_field(field: EditableFieldLike, state: Mapping[str, Any], currency: str) -> Any:
    if field.kind in ("amount", "quantity"):
        text = (state.get("value") or "").strip()
        if not text:
            return None
        return parse_major(text, currency) if field.kind == "amount" else _parse_quantity(text)
    selected = (state.get("selected_option") or {}).get("value")
    if selected is None:
        return None
    if field.kind == "bool":
        if selected not in (_YES, _NO):
            raise ValueError("Choose yes or no.")
        return selected == _YES
    if selected not in field.choices:
        raise ValueError("Choose one of the options.")
    return selected


def _parse_quantity(text: str) -> int:
    # ASCII digits only: `str.isdigit` also takes `５` and `²`, and `int("²")` raises.
    if not re.fullmatch(r"[0-9]{1,9}", text, re.ASCII):
        shown = text if len(text) <= 20 else text[:19] + "…"
        raise ValueError(f"“{shown}” is not a whole number.")
    return int(text)


def _check_lower_only(field: EditableFieldLike, value: Any, current: Any, currency: str) -> None:
    if not field.lower_only or not isinstance(current, int) or value <= current:
        return
    limit = format_money(current, currency) if field.kind == "amount" else str(current)
    raise ValueError(f"It can only be lowered: at most {limit}.")
