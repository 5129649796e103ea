"""The console's edit-and-approve form: the same fields and the same reading rules as Slack's Edit
modal (amounts in major units through `api.money.parse_major`, lower-only limits), then the
action's own `apply_edits` when the decision is recorded."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from api.actions import get_action
from api.actions.base import EditableField
from api.approvals.models import Approval
from api.money import format_major, format_money, parse_major

YES, NO = "yes", "no"
MAX_TEXT = 100


@dataclass(frozen=True)
class FormField:
    """One input of the edit form, prefilled with what would run now."""

    name: str
    label: str
    kind: str
    value: str
    choices: tuple[str, ...]

    @property
    def input_name(self) -> str:
        return f"edit.{self.name}"


def lookup(details: Mapping[str, Any], path: str) -> Any:
    node: Any = details
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def editable(approval: Approval) -> tuple[EditableField, ...]:
    spec = get_action(approval.action)
    if spec is None:
        return ()
    try:
        return spec.editable_for(approval.effective_details)
    except ValueError:
        return ()


def form_fields(approval: Approval, currency: str) -> list[FormField]:
    details = approval.effective_details
    fields = []
    for field in editable(approval):
        current = lookup(details, field.name)
        if field.kind == "amount":
            shown = format_major(current, currency) if isinstance(current, int) else ""
            choices: tuple[str, ...] = ()
        elif field.kind == "bool":
            shown, choices = (YES if current else NO), (YES, NO)
        elif field.kind == "choice":
            shown, choices = ("" if current is None else str(current)), field.choices
        else:
            shown, choices = ("" if current is None else str(current)), ()
        fields.append(FormField(field.name, field.label, field.kind, shown, choices))
    return fields


def read_edits(approval: Approval, form: Mapping[str, str], currency: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(edits in canonical units that change something, errors by field name)."""
    details = approval.effective_details
    edits: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in editable(approval):
        text = (form.get(f"edit.{field.name}") or "").strip()
        if not text:
            continue
        current = lookup(details, field.name)
        try:
            value = _read(field, text, currency)
            if field.lower_only and isinstance(current, int) and value > current:
                limit = format_money(current, currency) if field.kind == "amount" else str(current)
                raise ValueError(f"It can only be lowered: at most {limit}.")
        except ValueError as problem:
            errors[field.name] = str(problem)
            continue
        if value != current:
            edits[field.name] = value
    return edits, errors


def _read(field: EditableField, text: str, currency: str) -> Any:
    if len(text) > MAX_TEXT:
        raise ValueError("That is too long.")
    if field.kind == "amount":
        return parse_major(text, currency)
    if field.kind == "quantity":
        if not re.fullmatch(r"[0-9]{1,9}", text, re.ASCII):
            raise ValueError("Type a whole number.")
        return int(text)
    if field.kind == "bool":
        if text not in (YES, NO):
            raise ValueError("Choose yes or no.")
        return text == YES
    if text not in field.choices:
        raise ValueError("Choose one of the options.")
    return text
