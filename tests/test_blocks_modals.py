"""The Block Kit builders for the reject and edit modals, and reading an edit submission back."""

from dataclasses import dataclass

import pytest

from api.actions import get_action
from bot.blocks import (
    edit_modal,
    read_edit_submission,
    read_note,
    reject_modal,
)
from bot.ids import ButtonRef, CallbackId, field_block_id
from tests.blocks_helpers import amount_state, approval, payout_jpy

# -- modals -----------------------------------------------------------------------------------------


def test_reject_modal_requires_a_note_and_points_at_the_version():
    view = reject_modal(approval(), version=4)
    assert view["callback_id"] == CallbackId.REJECT_MODAL
    assert ButtonRef.loads(view["private_metadata"]) == ButtonRef(approval_id="apr_01HZX", version=4)
    note = next(b for b in view["blocks"] if b["type"] == "input")
    assert "note" in note["element"]["action_id"] and not note.get("optional")


def test_edit_modal_has_one_input_per_field_prefilled_in_major_units():
    refund = edit_modal(approval(), 2, get_action("issue_refund").editable)
    inputs = {b["block_id"]: b["element"] for b in refund["blocks"] if b["type"] == "input"}
    assert refund["callback_id"] == CallbackId.EDIT_MODAL
    assert inputs[field_block_id("amount_cents")]["action_id"] == "amount"
    assert inputs[field_block_id("amount_cents")]["initial_value"] == "349.00"
    assert inputs[field_block_id("reason")]["initial_option"]["value"] == "duplicate"
    assert "note" in inputs["note"]["action_id"]
    payout = edit_modal(payout_jpy(), 2, get_action("create_payout").editable)
    amount = next(b for b in payout["blocks"] if b.get("block_id") == field_block_id("amount_cents"))
    assert amount["element"]["initial_value"] == "5000"
    assert amount["label"]["text"].endswith("(JPY)") and "¥5,000 JPY" in amount["hint"]["text"]


def test_edit_modal_bools_and_item_quantities():
    cancel = approval(action="cancel_subscription", details={"subscription_id": "sub_1", "prorate": True})
    view = edit_modal(cancel, 1, get_action("cancel_subscription").editable)
    prorate = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("prorate"))
    assert prorate["element"]["initial_option"]["value"] == "true"
    details = {"subscription_id": "sub_1", "items": [{"id": "si_1", "quantity": 3}]}
    spec = get_action("update_subscription")
    view = edit_modal(approval(action="update_subscription", details=details), 1, spec.editable_for(details))
    quantity = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("items.0.quantity"))
    assert quantity["element"]["initial_value"] == "3"


@pytest.mark.parametrize(
    ("typed", "currency", "message"),
    [
        ("abc", "usd", "“abc” is not a number."),
        ("1.001", "usd", "USD amounts have at most 2 decimal places."),
        ("5.5", "jpy", "JPY has no decimal places."),
        ("0", "usd", "The amount must be greater than zero."),
    ],
)
def test_edit_submission_errors_are_keyed_by_block_id(typed, currency, message):
    fields = get_action("issue_refund").editable
    edits, errors = read_edit_submission(amount_state(typed), fields, currency)
    assert edits == {} and errors == {field_block_id("amount_cents"): message}


def test_edit_submission_reads_canonical_units():
    fields = get_action("issue_refund").editable
    values = amount_state("174.50")
    values[field_block_id("reason")] = {"reason": {"type": "static_select", "selected_option": {"value": "fraudulent"}}}
    values["note"] = {"note": {"type": "plain_text_input", "value": "  half, per policy  "}}
    assert read_edit_submission(values, fields, "usd") == ({"amount_cents": 17450, "reason": "fraudulent"}, {})
    assert read_edit_submission(amount_state("5000"), fields, "jpy") == ({"amount_cents": 5000}, {})
    assert read_note(values) == "half, per policy"
    assert read_note({"note": {"note": {"value": "   "}}}) is None


def test_lower_only_amounts_cannot_go_up():
    fields = get_action("create_payout").editable
    edits, errors = read_edit_submission(
        amount_state("60"), fields, "jpy", current_details={"amount_cents": 50, "currency": "jpy"}
    )
    assert edits == {} and "at most ¥50 JPY" in errors[field_block_id("amount_cents")]


def test_bool_and_quantity_submissions():
    @dataclass(frozen=True)
    class Field:
        name: str
        label: str
        kind: str
        choices: tuple[str, ...] = ()
        lower_only: bool = False

    fields = [Field("prorate", "Prorate", "bool"), Field("items.0.quantity", "Quantity", "quantity")]
    values = {
        field_block_id("prorate"): {"prorate": {"selected_option": {"value": "false"}}},
        field_block_id("items.0.quantity"): {"items.0.quantity": {"value": "2"}},
    }
    assert read_edit_submission(values, fields, "usd") == ({"prorate": False, "items.0.quantity": 2}, {})
    values[field_block_id("items.0.quantity")]["items.0.quantity"]["value"] = "two"
    _, errors = read_edit_submission(values, fields, "usd")
    assert errors == {field_block_id("items.0.quantity"): "“two” is not a whole number."}
