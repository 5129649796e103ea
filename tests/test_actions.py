"""The action catalogue without Stripe: validation, reviewer edits, operators' typed values."""

import pytest

from api.actions import ACTIONS, EditableField, EditRejected, get_action
from api.errors import ValidationFailed

REFUND = {"charge_id": "ch_3NxYzAbCdEfGhIjK", "amount_cents": 34900, "currency": "usd",
          "reason": "duplicate", "customer_id": "cus_QaAbCdEfGhIjK"}
PAYOUT = {"amount_cents": 500000, "currency": "usd", "method": "standard"}
UPDATE = {"subscription_id": "sub_1", "items": [{"id": "si_A", "quantity": 2}, {"price": "price_B"}]}

GOOD = {
    "issue_refund": REFUND,
    "create_payout": {**PAYOUT, "destination": "ba_1", "description": "weekly", "statement_descriptor": "ACME"},
    "cancel_subscription": {"subscription_id": "sub_1", "at_period_end": False, "prorate": True,
                            "invoice_now": False},
    "update_subscription": {**UPDATE, "proration_behavior": "none", "cancel_at_period_end": False,
                            "pause_collection": {"behavior": "void", "resumes_at": 1900000000}},
    "close_dispute": {"dispute_id": "dp_1"},
    "submit_dispute_evidence": {"dispute_id": "du_1", "evidence": {"uncategorized_text": "proof"},
                                "submit": False},
    "retrieve_balance": {},
    "retrieve_charge": {"charge_id": "py_1"},
    "list_refunds": {"payment_intent_id": "pi_1", "limit": 100},
    "retrieve_subscription": {"subscription_id": "sub_1"},
    "retrieve_dispute": {"dispute_id": "dp_1"},
}


def errors_of(action: str, details: object) -> dict[tuple, str]:
    with pytest.raises(ValidationFailed) as caught:
        get_action(action).validate_details(details)
    assert caught.value.status == 422
    assert caught.value.detail == f"details are invalid for {action}"
    return {tuple(error["loc"]): error["msg"] for error in caught.value.errors}


def test_the_catalogue_is_contract_section_5():
    assert set(ACTIONS) == set(GOOD)
    assert get_action("send_wire") is None
    reads = {name for name, spec in ACTIONS.items() if spec.read_only}
    assert reads == {"retrieve_balance", "retrieve_charge", "list_refunds", "retrieve_subscription",
                     "retrieve_dispute"}
    assert get_action("issue_refund").title == "Issue refund"
    assert all(spec.name == name and spec.title for name, spec in ACTIONS.items())
    assert all(spec.details_model.model_config["extra"] == "forbid" for spec in ACTIONS.values())


@pytest.mark.parametrize("action", sorted(GOOD))
def test_good_details_pass_unchanged(action):
    assert get_action(action).validate_details(GOOD[action]) == GOOD[action]


@pytest.mark.parametrize("action", sorted(GOOD))
def test_unknown_fields_are_refused_by_name(action):
    errors = errors_of(action, {**GOOD[action], "amount_usd": 349})
    assert "is not a field of" in errors[("details", "amount_usd")]


@pytest.mark.parametrize("action", sorted(GOOD))
def test_details_must_be_an_object(action):
    assert errors_of(action, ["not", "an", "object"]) == {("details",): "must be an object"}


def test_normalises_currency_and_leaves_out_what_was_not_given():
    details = get_action("issue_refund").validate_details({"payment_intent_id": "pi_1", "currency": "USD"})
    assert details == {"payment_intent_id": "pi_1", "currency": "usd"}


@pytest.mark.parametrize(("amount", "says"), [
    (349.0, "not a decimal number"), ("34900", "not a string"), (True, "not a boolean"),
    (None, "not null"), (-100, "greater than zero"), (0, "greater than zero"),
])
def test_amounts_are_strict_positive_integers(amount, says):
    for action, base in (("create_payout", PAYOUT), ("issue_refund", REFUND)):
        if amount is None and action == "issue_refund":
            continue  # an explicit null refund amount means the whole refund
        errors = errors_of(action, {**base, "amount_cents": amount})
        assert says in errors[("details", "amount_cents")]


@pytest.mark.parametrize("currency", ["us", "usdd", "u$d", 840, ""])
def test_currency_is_a_three_letter_code(currency):
    errors = errors_of("create_payout", {**PAYOUT, "currency": currency})
    assert errors[("details", "currency")] == "must be a three-letter ISO currency code such as usd"


@pytest.mark.parametrize("targets", [{}, {"charge_id": "ch_1", "payment_intent_id": "pi_1"}])
def test_a_refund_names_exactly_one_payment(targets):
    errors = errors_of("issue_refund", {"amount_cents": 100, **targets})
    assert errors == {("details",): "give exactly one of charge_id or payment_intent_id"}


def test_refund_fields_are_checked_one_by_one():
    errors = errors_of("issue_refund", {"charge_id": "pi_1", "reason": "Duplicate", "customer_id": "cu_1",
                                        "metadata": {"order": {"id": 1}}})
    assert errors[("details", "charge_id")] == "must be a Stripe charge id (ch_… or py_…)"
    assert "'duplicate', 'fraudulent' or 'requested_by_customer'" in errors[("details", "reason")]
    assert errors[("details", "customer_id")] == "must be a Stripe customer id (cus_…)"
    assert "strings" in errors[("details", "metadata")]


@pytest.mark.parametrize("metadata", [{"k": 1}, {"k[0]": "v"}, {"x" * 41: "v"}, {"k": "v" * 501},
                                      {str(i): "v" for i in range(51)}, "flat"])
def test_metadata_is_flat_strings_within_stripes_limits(metadata):
    assert ("details", "metadata") in errors_of("issue_refund", {**REFUND, "metadata": metadata})


def test_payout_fields():
    errors = errors_of("create_payout", {"amount_cents": 100, "method": "fast",
                                         "statement_descriptor": "X" * 23})
    assert errors[("details", "currency")] == "is required"
    assert ("details", "method") in errors
    assert "22 characters" in errors[("details", "statement_descriptor")]


def test_cancel_subscription_flags_are_real_booleans():
    errors = errors_of("cancel_subscription", {"subscription_id": "cus_1", "prorate": "false",
                                               "invoice_now": 1})
    assert errors[("details", "subscription_id")] == "must be a Stripe subscription id (sub_…)"
    assert ("details", "prorate") in errors and ("details", "invoice_now") in errors


def test_update_subscription_must_change_something_valid():
    assert errors_of("update_subscription", {"subscription_id": "sub_1"}) == {
        ("details",): "give at least one of items, proration_behavior, cancel_at_period_end, pause_collection"}
    errors = errors_of("update_subscription", {"subscription_id": "sub_1", "proration_behavior": "sometimes",
                                               "items": [{"quantity": 2}, {"id": "si_1", "quantity": 0},
                                                         {"price": "price_1", "deleted": True}]})
    assert ("details", "proration_behavior") in errors
    assert errors[("details", "items", 0)] == "give the item's id (si_…) or a price for a new item"
    assert "at least 1" in errors[("details", "items", 1, "quantity")]
    assert errors[("details", "items", 2)] == "deleted needs the id of the item to remove"
    assert errors_of("update_subscription", {"subscription_id": "sub_1", "items": []})
    assert ("details", "pause_collection", "behavior") in errors_of(
        "update_subscription", {"subscription_id": "sub_1", "pause_collection": {"resumes_at": 1}})


def test_dispute_evidence_uses_stripes_field_names():
    errors = errors_of("submit_dispute_evidence", {"dispute_id": "ch_1", "evidence": {"story": "x"},
                                                   "submit": "yes"})
    assert errors[("details", "dispute_id")] == "must be a Stripe dispute id (dp_… or du_…)"
    assert errors[("details", "evidence", "story")] == "is not a field Stripe accepts here"
    assert ("details", "submit") in errors
    assert errors_of("submit_dispute_evidence", {"dispute_id": "dp_1", "evidence": {}}) == {
        ("details", "evidence"): "give at least one evidence field"}
    assert errors_of("submit_dispute_evidence", {"dispute_id": "dp_1"}) == {
        ("details", "evidence"): "is required"}


def test_read_only_actions_validate_their_ids():
    assert errors_of("retrieve_charge", {}) == {("details", "charge_id"): "is required"}
    assert ("details", "charge_id") in errors_of("retrieve_charge", {"charge_id": "ch 1"})
    assert ("details", "subscription_id") in errors_of("retrieve_subscription", {"subscription_id": "si_1"})
    assert ("details", "dispute_id") in errors_of("retrieve_dispute", {"dispute_id": 7})
    assert ("details", "extra") in errors_of("retrieve_balance", {"extra": True})
    for limit in (0, 101, "10", 2.0):
        assert ("details", "limit") in errors_of("list_refunds", {"limit": limit})
    assert get_action("list_refunds").validate_details({}) == {}


def test_editable_fields_per_contract():
    def shape(action):
        return [(f.name, f.kind, f.choices, f.lower_only) for f in get_action(action).editable]

    assert shape("issue_refund") == [
        ("amount_cents", "amount", (), False),
        ("reason", "choice", ("duplicate", "fraudulent", "requested_by_customer"), False)]
    assert shape("create_payout") == [("amount_cents", "amount", (), True),
                                      ("method", "choice", ("standard", "instant"), False)]
    assert shape("cancel_subscription") == [("at_period_end", "bool", (), False), ("prorate", "bool", (), False),
                                            ("invoice_now", "bool", (), False)]
    assert shape("update_subscription") == [
        ("proration_behavior", "choice", ("create_prorations", "none", "always_invoice"), False),
        ("items.<index>.quantity", "quantity", (), False)]
    assert shape("submit_dispute_evidence") == [("submit", "bool", (), False)]
    assert shape("close_dispute") == []
    assert all(not spec.editable for spec in ACTIONS.values() if spec.read_only)


def test_item_quantities_are_editable_per_item():
    spec = get_action("update_subscription")
    details = {**UPDATE, "items": [*UPDATE["items"], {"id": "si_C", "deleted": True}]}
    assert [f.name for f in spec.editable_for(details)] == [
        "proration_behavior", "items.0.quantity", "items.1.quantity"]
    assert spec.editable_for(details)[1] == EditableField("items.0.quantity", "Quantity of si_A", "quantity")


# -- apply_edits ---------------------------------------------------------------------------------------


def rejected(action: str, details: dict, edits: dict) -> EditRejected:
    with pytest.raises(EditRejected) as caught:
        get_action(action).apply_edits(details, edits)
    error = caught.value
    assert isinstance(error, ValidationFailed) and error.status == 422
    assert error.errors == [{"loc": ["edits", error.field], "msg": error.message}]
    return error


def test_a_reviewer_halves_a_refund():
    original = dict(REFUND)
    modified, changes = get_action("issue_refund").apply_edits(REFUND, {"amount_cents": 17450})
    assert modified == {**REFUND, "amount_cents": 17450}  # the whole payload, not a fragment
    assert changes == {"amount_cents": {"from": 34900, "to": 17450}}
    assert original == REFUND  # the request's own details are left alone


def test_only_fields_that_changed_are_reported():
    modified, changes = get_action("issue_refund").apply_edits(
        REFUND, {"amount_cents": 34900, "reason": "fraudulent"})
    assert changes == {"reason": {"from": "duplicate", "to": "fraudulent"}}
    assert modified["reason"] == "fraudulent"
    assert get_action("issue_refund").apply_edits(REFUND, {}) == (REFUND, {})


def test_a_whole_refund_can_be_given_an_amount():
    details = {"payment_intent_id": "pi_1"}
    modified, changes = get_action("issue_refund").apply_edits(details, {"amount_cents": 5000})
    assert modified == {"payment_intent_id": "pi_1", "amount_cents": 5000}
    assert changes == {"amount_cents": {"from": None, "to": 5000}}


@pytest.mark.parametrize(("edits", "field", "says"), [
    ({"charge_id": "ch_other"}, "charge_id", "is not editable for issue_refund"),
    ({"currency": "eur"}, "currency", "is not editable"),
    ({"amount_cents": 174.5}, "amount_cents", "whole number of minor units"),
    ({"amount_cents": "17450"}, "amount_cents", "whole number of minor units"),
    ({"amount_cents": True}, "amount_cents", "whole number of minor units"),
    ({"amount_cents": 0}, "amount_cents", "greater than zero"),
    ({"amount_cents": -5}, "amount_cents", "greater than zero"),
    ({"reason": "changed_my_mind"}, "reason", "must be one of duplicate, fraudulent, requested_by_customer"),
    ({"reason": None}, "reason", "must be one of"),
])
def test_refund_edits_that_are_refused(edits, field, says):
    error = rejected("issue_refund", REFUND, edits)
    assert error.field == field
    assert says in error.message


def test_a_payout_can_be_lowered_but_never_raised():
    spec = get_action("create_payout")
    assert spec.apply_edits(PAYOUT, {"amount_cents": 250000})[1] == {
        "amount_cents": {"from": 500000, "to": 250000}}
    assert spec.apply_edits(PAYOUT, {"amount_cents": 500000})[1] == {}
    assert rejected("create_payout", PAYOUT, {"amount_cents": 500001}).message == \
        "can only be lowered (at most 500000)"
    assert spec.apply_edits(PAYOUT, {"method": "instant"})[0]["method"] == "instant"
    assert rejected("create_payout", PAYOUT, {"method": "wire"}).field == "method"
    assert rejected("create_payout", PAYOUT, {"destination": "ba_2"}).field == "destination"


def test_cancellation_flags_are_booleans():
    spec = get_action("cancel_subscription")
    modified, changes = spec.apply_edits({"subscription_id": "sub_1"}, {"at_period_end": True, "prorate": False})
    assert modified == {"subscription_id": "sub_1", "at_period_end": True, "prorate": False}
    assert changes == {"at_period_end": {"from": None, "to": True}, "prorate": {"from": None, "to": False}}
    assert rejected("cancel_subscription", {"subscription_id": "sub_1"}, {"invoice_now": "true"}).message == \
        "must be true or false"


def test_item_quantity_and_proration_edits():
    spec = get_action("update_subscription")
    modified, changes = spec.apply_edits(UPDATE, {"items.0.quantity": 5, "items.1.quantity": 1,
                                                  "proration_behavior": "always_invoice"})
    assert modified["items"] == [{"id": "si_A", "quantity": 5}, {"price": "price_B", "quantity": 1}]
    assert changes == {"items.0.quantity": {"from": 2, "to": 5}, "items.1.quantity": {"from": None, "to": 1},
                       "proration_behavior": {"from": None, "to": "always_invoice"}}
    assert UPDATE["items"][0]["quantity"] == 2
    assert rejected("update_subscription", UPDATE, {"items.0.quantity": 0}).message == "must be at least 1"
    assert rejected("update_subscription", UPDATE, {"items.2.quantity": 1}).field == "items.2.quantity"
    assert rejected("update_subscription", UPDATE, {"items.<index>.quantity": 1})
    assert rejected("update_subscription", UPDATE, {"items.0.price": "price_C"})
    assert rejected("update_subscription", UPDATE, {"proration_behavior": "never"})


def test_dispute_edits():
    details = GOOD["submit_dispute_evidence"]
    assert get_action("submit_dispute_evidence").apply_edits(details, {"submit": True})[1] == {
        "submit": {"from": False, "to": True}}
    assert rejected("submit_dispute_evidence", details, {"evidence": {}}).field == "evidence"
    error = rejected("close_dispute", {"dispute_id": "dp_1"}, {"dispute_id": "dp_2"})
    assert error.message == "close_dispute has no fields a reviewer may change"


def test_read_only_actions_take_no_edits():
    assert rejected("retrieve_charge", {"charge_id": "ch_1"}, {"charge_id": "ch_2"}).field == "charge_id"


def test_edits_to_invalid_details_report_the_details():
    with pytest.raises(ValidationFailed) as caught:
        get_action("issue_refund").apply_edits({"amount_cents": 5}, {"amount_cents": 4})
    assert caught.value.errors[0]["loc"] == ["details"]


# -- parse_edit ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "currency", "value"), [
    ("17450", None, 17450), (" 17450 ", "usd", 17450), ("174.50", "usd", 17450), ("$174.50", "usd", 17450),
    ("174.5", "usd", 17450), ("5000", "jpy", 5000), ("¥5000", "jpy", 5000), ("1.234", "kwd", 1234),
])
def test_typed_amounts(text, currency, value):
    assert get_action("issue_refund").parse_edit("amount_cents", text, currency) == value


@pytest.mark.parametrize(("text", "currency", "says"), [
    ("174.50", None, "currency is not known"), ("0", "usd", "greater than zero"),
    ("-5", "usd", "whole number of minor units"), ("17,450", "usd", "whole number of minor units"),
    ("abc", "usd", "whole number of minor units"), ("", "usd", "whole number of minor units"),
    ("1.5", "jpy", "no decimal places"), ("174.505", "usd", "at most 2 decimal places"),
    ("1.2.3", "usd", "not a number"), ("$0.00", "usd", "greater than zero"),
])
def test_typed_amounts_that_are_refused(text, currency, says):
    with pytest.raises(ValueError, match=says):
        get_action("create_payout").parse_edit("amount_cents", text, currency)


def test_typed_choices_booleans_and_quantities():
    assert get_action("issue_refund").parse_edit("reason", "duplicate", "usd") == "duplicate"
    with pytest.raises(ValueError, match="reason must be one of duplicate, fraudulent, requested_by_customer"):
        get_action("issue_refund").parse_edit("reason", "Duplicate", "usd")
    cancel = get_action("cancel_subscription")
    for text, value in (("false", False), ("TRUE", True), ("yes", True), ("0", False), ("off", False)):
        assert cancel.parse_edit("prorate", text, None) is value
    with pytest.raises(ValueError, match="prorate must be true or false"):
        cancel.parse_edit("prorate", "maybe", None)
    update = get_action("update_subscription")
    assert update.parse_edit("items.3.quantity", "4", None) == 4
    with pytest.raises(ValueError, match="at least 1"):
        update.parse_edit("items.0.quantity", "0", None)
    with pytest.raises(ValueError, match="at least 1"):
        update.parse_edit("items.0.quantity", "2.5", None)


def test_typed_values_for_fields_that_are_not_editable():
    with pytest.raises(ValueError, match="charge_id is not editable for issue_refund"):
        get_action("issue_refund").parse_edit("charge_id", "ch_1", "usd")
    with pytest.raises(ValueError, match="close_dispute has no fields"):
        get_action("close_dispute").parse_edit("dispute_id", "dp_1", None)
    with pytest.raises(ValueError, match="not editable"):
        get_action("update_subscription").parse_edit("items.x.quantity", "1", None)


def test_currency_for_money_display():
    assert get_action("issue_refund").currency(REFUND) == "usd"
    assert get_action("issue_refund").currency({"charge_id": "ch_1"}) is None
    assert get_action("create_payout").currency({**PAYOUT, "currency": "JPY"}) == "jpy"
    assert get_action("close_dispute").currency({"dispute_id": "dp_1"}) is None
