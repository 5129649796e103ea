"""The policy engine deciding: the CONTRACT §6 example, velocity totals, run-time safety and
business hours.

Load-time refusals and versioning are in test_policy_loading.py, replay in test_policy_replay.py.
"""

import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from api.policy import (
    CustomerTotals,
    PolicyInput,
    Totals,
    empty_totals,
    load_policy,
    parse_policy,
)
from api.policy.totals import TOTALS_FIELDS
from tests import policy_helpers
from tests.policy_helpers import MONDAY_NOON_UTC, POLICIES, ask

contract_policy = policy_helpers.contract_policy  # the fixture: CONTRACT §6's example policy


# --- CONTRACT §6 as written ---

@pytest.mark.parametrize("action", ["retrieve_balance", "retrieve_charge", "list_refunds"])
def test_contract_example_passes_the_listed_reads(contract_policy, action):
    decision = contract_policy.evaluate(ask(action, charge_id="ch_1"))
    assert (decision.decision, decision.rule) == ("pass", "read-only lookups")


def test_contract_example_approves_a_small_duplicate_refund(contract_policy):
    decision = contract_policy.evaluate(ask("issue_refund", charge_id="ch_1", amount_cents=4999,
                                            reason="duplicate"))
    assert (decision.decision, decision.rule, decision.errors) == ("approve", "small duplicate refunds", [])


def test_contract_example_reviews_a_small_refund_that_is_not_a_duplicate(contract_policy):
    decision = contract_policy.evaluate(ask("issue_refund", charge_id="ch_1", amount_cents=4999,
                                            reason="requested_by_customer"))
    assert (decision.decision, decision.rule) == ("review", None)
    assert decision.approvers == ["U012ABCDEF", "S0FINANCE"]
    assert (decision.required_approvals, decision.expires_in) == (1, timedelta(hours=24))


def test_contract_example_rejects_a_very_large_payout_with_the_note(contract_policy):
    decision = contract_policy.evaluate(ask("create_payout", amount_cents=5_000_001, currency="usd"))
    assert (decision.decision, decision.rule) == ("reject", "very large payouts")
    assert decision.note == "Payouts above $50,000 are made by hand."


def test_contract_example_asks_two_approvals_for_a_large_refund(contract_policy):
    decision = contract_policy.evaluate(ask("issue_refund", charge_id="ch_1", amount_cents=250_000,
                                            reason="requested_by_customer"))
    assert (decision.decision, decision.rule, decision.required_approvals) == ("review", "large refunds", 2)
    assert decision.approvers == ["U012ABCDEF", "S0FINANCE"]
    assert "2 approvals" in decision.explain()


def test_contract_example_sends_unmatched_requests_to_review_with_the_defaults(contract_policy):
    decision = contract_policy.evaluate(ask("cancel_subscription", subscription_id="sub_1"))
    assert (decision.decision, decision.rule, decision.note, decision.errors) == ("review", None, None, [])
    assert decision.policy_version == contract_policy.version
    assert decision.explain() == "No policy rule matched, so it needs review."


def test_first_matching_rule_wins():
    policy = load_policy(POLICIES / "first_match.yaml")
    critical = PolicyInput(action="issue_refund", details={"charge_id": "ch_1"}, now=MONDAY_NOON_UTC,
                           request={"riskLevel": "critical"})
    assert policy.evaluate(critical).rule == "risky agents first"
    assert policy.evaluate(ask("issue_refund", charge_id="ch_1")).rule == "any refund"
    payout = policy.evaluate(ask("create_payout", amount_cents=100, currency="eur"))
    assert (payout.rule, payout.approvers, payout.required_approvals, payout.expires_in) == (
        "never reached for refunds", ["S0FINANCE"], 3, timedelta(seconds=90))


def test_absent_request_fields_read_as_null():
    policy = load_policy(POLICIES / "first_match.yaml")
    bare = PolicyInput(action="issue_refund", details={"charge_id": "ch_1"}, now=MONDAY_NOON_UTC)
    assert (policy.evaluate(bare).rule, policy.evaluate(bare).errors) == ("any refund", [])


# --- velocity ---

def test_the_tenth_refund_for_a_customer_in_a_day_is_not_auto_approved():
    policy = load_policy(POLICIES / "velocity.yaml")

    def refund_after(previous: int):
        totals = Totals(customer=CustomerTotals(refunds_24h_count=previous, refunds_24h_cents=previous * 1000))
        return policy.evaluate(PolicyInput(action="issue_refund", now=MONDAY_NOON_UTC, totals=totals,
                                           details={"charge_id": "ch_1", "amount_cents": 1000}))

    assert [refund_after(n).decision for n in range(9)] == ["approve"] * 9
    tenth = refund_after(9)
    assert (tenth.decision, tenth.rule, tenth.required_approvals) == ("review", "refund spree", 2)
    assert tenth.note == "Ten refunds for one customer in a day."


def test_totals_given_as_a_mapping_are_used_as_given():
    policy = load_policy(POLICIES / "velocity.yaml")
    details = {"charge_id": "ch_1", "amount_cents": 1000}
    many = {"customer": {"refunds_24h_count": 12}}
    assert policy.evaluate(PolicyInput(action="issue_refund", details=details, now=MONDAY_NOON_UTC,
                                       totals=many)).rule == "refund spree"
    # A mapping missing the total a rule reads fails that rule, which must not end in approval.
    forgotten = policy.evaluate(PolicyInput(action="issue_refund", details=details, now=MONDAY_NOON_UTC,
                                            totals={}))
    assert (forgotten.decision, forgotten.rule) == ("review", None)
    assert forgotten.errors and "refund spree" in forgotten.errors[0]


def test_totals_shape():
    assert empty_totals().as_variables()["customer"] == {"refunds_24h_count": 0, "refunds_24h_cents": 0}
    assert set(TOTALS_FIELDS) == {"connection", "customer", "action"}
    assert TOTALS_FIELDS["action"] == {"count_24h", "amount_24h_cents"}


# --- run-time failures never approve ---

def test_a_whole_refund_fails_the_amount_conditions_and_goes_to_review(contract_policy, caplog):
    # No amount_cents: a whole refund, of any size. Both amount rules fail; neither may approve.
    decision = contract_policy.evaluate(ask("issue_refund", charge_id="ch_1", reason="duplicate"))
    assert (decision.decision, decision.rule) == ("review", None)
    assert decision.approvers == ["U012ABCDEF", "S0FINANCE"]
    assert len(decision.errors) == 2
    assert "small duplicate refunds" in decision.errors[0] and "amount_cents" in decision.errors[0]
    assert "could not be evaluated" in decision.explain()
    assert "small duplicate refunds" in caplog.text


def test_an_approve_rule_after_a_failed_rule_is_turned_into_review():
    policy = parse_policy(textwrap.dedent("""\
        defaults: {approvers: [U012ABCDEF]}
        rules:
          - name: big refunds
            actions: [issue_refund]
            when: details.amount_cents > 100000
            decision: reject
            note: too big
          - name: everything else
            decision: approve
        """).encode(), "policy.yaml")
    decision = policy.evaluate(ask("issue_refund", charge_id="ch_1"))
    assert (decision.decision, decision.rule) == ("review", None)
    assert decision.errors == ["rule 'big refunds': no field 'amount_cents' in this request"]
    # The same rule, evaluated cleanly, still approves.
    assert policy.evaluate(ask("issue_refund", charge_id="ch_1", amount_cents=10)).decision == "approve"


@pytest.mark.parametrize("details", [
    {"charge_id": "ch_1", "amount_cents": "4999", "reason": "duplicate"},  # a string: no overload
    {"charge_id": "ch_1", "amount_cents": None, "reason": "duplicate"},
    {"charge_id": "ch_1", "amount_cents": 1, "reason": "duplicate", "metadata": {"x": object()}},
])
def test_odd_values_fail_safely(contract_policy, details):
    decision = contract_policy.evaluate(PolicyInput(action="issue_refund", details=details,
                                                    now=MONDAY_NOON_UTC))
    assert decision.decision == "review" and decision.errors


def test_a_condition_that_is_not_a_boolean_fails():
    policy = parse_policy(b"rules:\n  - {name: n, actions: [create_payout], when: details.amount_cents, "
                          b"decision: approve}\n")
    decision = policy.evaluate(ask("create_payout", amount_cents=5, currency="usd"))
    assert decision.decision == "review" and "not true or false" in decision.errors[0]


def test_now_must_be_timezone_aware(contract_policy):
    with pytest.raises(ValueError, match="timezone-aware"):
        contract_policy.evaluate(ask("issue_refund", now=datetime(2024, 5, 6, 12, 0), charge_id="ch_1"))


# --- business hours with `now` ---

@pytest.mark.parametrize(("moment", "expected"), [
    (datetime(2024, 5, 6, 7, 30, tzinfo=UTC), "small payouts in hours"),  # Monday 09:30 in Paris
    (datetime(2024, 5, 6, 6, 30, tzinfo=UTC), "payouts out of hours"),  # 08:30 in Paris
    (datetime(2024, 5, 6, 16, 0, tzinfo=UTC), "payouts out of hours"),  # 18:00 in Paris
    (datetime(2024, 5, 4, 10, 0, tzinfo=UTC), "payouts out of hours"),  # Saturday
    (datetime(2024, 1, 8, 8, 30, tzinfo=UTC), "small payouts in hours"),  # winter: UTC+1, 09:30
])
def test_business_hours_in_a_time_zone(moment, expected):
    policy = load_policy(POLICIES / "business_hours.yaml")
    decision = policy.evaluate(ask("create_payout", now=moment, amount_cents=100, currency="eur"))
    assert (decision.rule, decision.errors) == (expected, [])


@pytest.mark.parametrize(("condition", "expected"), [
    ("now.getHours() == 12", True),  # without a zone: UTC
    ('now.getHours("America/New_York") == 8', True),
    ('now.getHours("+05:30") == 17 && now.getMinutes("+05:30") == 30', True),
    ("now.getDayOfWeek() == 1 && now.getDate() == 6 && now.getMonth() == 4", True),  # Monday 6 May
    ('now > timestamp("2024-05-06T11:00:00Z") && now - duration("2h") < timestamp("2024-05-06T11:00:00Z")',
     True),
])
def test_now_in_conditions(condition, expected):
    policy = parse_policy(f"rules:\n  - name: n\n    when: '{condition}'\n    decision: reject\n"
                          f"    note: n\n".encode())
    decision = policy.evaluate(ask("close_dispute", dispute_id="dp_1"))
    assert (decision.decision == "reject", decision.errors) == (expected, [])


def test_an_unknown_time_zone_fails_safely():
    policy = parse_policy(b"rules:\n  - {name: n, when: 'now.getHours(\"Mars/Base\") < 9', decision: approve}\n")
    decision = policy.evaluate(ask("close_dispute", dispute_id="dp_1"))
    assert decision.decision == "review" and "Mars/Base" in decision.errors[0]
