"""The policy engine: the CONTRACT §6 example, load-time refusals with file:line, run-time safety,
velocity totals, business hours, replay and versioning."""

import hashlib
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.policy import (
    CustomerTotals,
    PolicyError,
    PolicyInput,
    Totals,
    default_policy,
    empty_totals,
    load_policy,
    parse_policy,
    replay,
)
from api.policy.catalogue import DETAILS_FIELDS, READ_ONLY_ACTIONS
from api.policy.totals import TOTALS_FIELDS

POLICIES = Path(__file__).parent / "policies"
MONDAY_NOON_UTC = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def ask(action: str, now: datetime = MONDAY_NOON_UTC, **details: object) -> PolicyInput:
    return PolicyInput(action=action, details=details, now=now,
                       request={"riskLevel": "medium", "priority": "normal", "agentName": "bot"},
                       connection={"id": "con_1", "name": "support agent"})


@pytest.fixture
def contract_policy():
    return load_policy(POLICIES / "contract_example.yaml")


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


# --- refused at load, with file, line and reason ---

REFUSED = {
    "unknown top-level key": ("defaults: {approvers: [U012ABCDEF]}\nrule:\n  - {name: a, decision: review}\n",
                              2, "rule: unknown key 'rule' (allowed: defaults, rules)"),
    "unknown key in a rule": ("rules:\n  - name: a\n    decision: review\n    approver: [U012ABCDEF]\n",
                              4, "rules[0].approver: unknown key 'approver'"),
    "unknown key in defaults": ("defaults:\n  timeout: 24h\n", 2, "defaults.timeout: unknown key 'timeout'"),
    "CEL syntax error": ("rules:\n  - name: a\n    when: details.amount_cents <= 5000 &&\n    decision: approve\n",
                         3, "rules[0].when: CEL syntax error at column 32"),
    "CEL syntax error in a block": ("rules:\n  - name: a\n    when: |\n      details.amount_cents > 1\n"
                                    "        && (details.reason == 'x'\n    decision: review\n",
                                    5, "rules[0].when: CEL syntax error"),
    "undeclared variable": ("rules:\n  - name: a\n    actions: [issue_refund]\n    when: detials.amount > 5\n"
                            "    decision: approve\n", 4, "undeclared reference to 'detials'"),
    "no such details field": ("rules:\n  - name: a\n    actions: [issue_refund]\n    when: details.amount > 5\n"
                              "    decision: approve\n",
                              4, "'details.amount' is not a field of the details of the rule's actions "
                                 "(did you mean 'amount_cents'?)"),
    "a field of another action": ("rules:\n  - name: a\n    actions: [create_payout]\n"
                                  "    when: details.reason == 'duplicate'\n    decision: approve\n",
                                  4, "'details.reason' is not a field"),
    "undeclared total": ("rules:\n  - name: a\n    when: totals.customer.refunds_count > 1\n    decision: review\n",
                         3, "'totals.customer.refunds_count' is not a declared total"),
    "unknown function": ("rules:\n  - name: a\n    when: now.getHour() > 1\n    decision: review\n",
                         3, "unknown function 'getHour' (did you mean 'getHours'?)"),
    "zero duration": ("defaults:\n  expires_in: 0h\n", 2, "defaults.expires_in: a duration must be positive"),
    "negative duration": ("rules:\n  - name: a\n    decision: review\n    expires_in: -5m\n",
                          4, "rules[0].expires_in: a duration must be positive"),
    "duration without a unit": ("rules:\n  - name: a\n    decision: review\n    expires_in: 3600\n",
                                4, "expected a duration such as 90s, 15m, 24h or 7d"),
    "longer than the bound": ("defaults:\n  max_expires_in: 1d\nrules:\n  - name: a\n    decision: review\n"
                              "    expires_in: 2d\n", 6, "is longer than defaults.max_expires_in"),
    "zero approvals": ("rules:\n  - name: a\n    decision: review\n    required_approvals: 0\n",
                       4, "rules[0].required_approvals: must be at least 1"),
    "reject without a note": ("rules:\n  - name: a\n    decision: reject\n", 2, "rules[0].note: a reject rule needs"),
    "duplicate rule names": ("rules:\n  - {name: a, decision: review}\n  - {name: b, decision: review}\n"
                             "  - {name: a, decision: approve}\n",
                             4, "rules[2].name: duplicate rule name 'a' (first used by rules[0])"),
    "pass on a write": ("rules:\n  - name: a\n    actions: [issue_refund, retrieve_charge]\n    decision: pass\n",
                        4, "rules[0].decision: `pass` runs an action at once without review"),
    "pass on any action": ("rules:\n  - {name: a, decision: pass}\n", 2, "this rule covers any action"),
    "review settings on an approve rule": ("rules:\n  - name: a\n    decision: approve\n    required_approvals: 2\n",
                                           4, "only a review rule takes `required_approvals`"),
    "unknown decision": ("rules:\n  - name: a\n    decision: allow\n", 3, "rules[0].decision: must be one of"),
    "missing decision": ("rules:\n  - name: a\n", 2, "rules[0].decision: is required"),
    "not a Slack id": ("defaults:\n  approvers: [alice@example.com]\n", 2, "is not a Slack user or user-group ID"),
    "empty actions": ("rules:\n  - name: a\n    actions: []\n    decision: review\n", 3, "matches no action"),
    "duplicate key": ("rules:\n  - name: a\n    decision: review\n    decision: approve\n",
                      4, "duplicate key 'decision'"),
    "not a mapping": ("- name: a\n  decision: review\n", 1, "a policy must be a mapping"),
    "empty file": ("", 1, "not an empty file"),
    "YAML syntax error": ("rules:\n  - name: a\n    decision: [review\n  - name: b\n", 4, "YAML syntax error"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_bad_policies_are_refused_with_file_line_and_reason(tmp_path, case):
    text, line, reason = REFUSED[case]
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert refused.value.problems[0].startswith(f"{path}:{line}: "), refused.value.problems
    assert reason in refused.value.problems[0]


def test_every_problem_is_reported_at_once():
    with pytest.raises(PolicyError) as refused:
        parse_policy(b"rules:\n  - {name: a, decision: reject}\n  - {name: b, when: foo > 1, decision: review}\n",
                     "policy.yaml")
    assert [problem.split(": ")[0] for problem in refused.value.problems] == ["policy.yaml:2", "policy.yaml:3"]
    assert str(refused.value).count("\n") == 1


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "missing.yaml")


def test_custom_actions_are_accepted_with_a_warning_naming_the_line():
    policy = load_policy(POLICIES / "custom_action.yaml")
    assert len(policy.warnings) == 2
    assert ":3: rules[0].actions[0]: 'add_crm_note' is not a catalogue action" in policy.warnings[0]
    assert "did you mean 'issue_refund'?" in policy.warnings[1]
    # A custom action's details have no declared shape, so its fields are not checked at load.
    gold = PolicyInput(action="add_crm_note", details={"customer_tier": "gold"}, now=MONDAY_NOON_UTC)
    assert policy.evaluate(gold).decision == "approve"


def test_conditions_see_through_strings_comprehensions_and_comments():
    policy = parse_policy(textwrap.dedent("""\
        rules:
          - name: tricky but valid
            actions: [update_subscription]
            when: >-
              details.items.all(item, item.quantity < 5)  // item's fields are not checked
              && 'details.nonsense' != details.proration_behavior
              && has(details.subscription_id) && request.metadata.ticket == "T-1"
            decision: approve
        """).encode())
    decision = policy.evaluate(PolicyInput(
        action="update_subscription", now=MONDAY_NOON_UTC, request={"metadata": {"ticket": "T-1"}},
        details={"subscription_id": "sub_1", "items": [{"quantity": 2}], "proration_behavior": "none"}))
    assert (decision.decision, decision.errors) == ("approve", [])


# --- versions, the built-in policy, the catalogue ---

def test_the_version_is_the_hash_of_the_file_and_changes_with_it(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_bytes((POLICIES / "contract_example.yaml").read_bytes())
    first = load_policy(path)
    assert first.version == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(path.read_bytes() + b"# a comment is a change too\n")
    assert load_policy(path).version != first.version
    assert load_policy(path).version == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_builtin_policy_passes_reads_and_reviews_everything_else():
    policy = default_policy(["U012ABCDEF"])
    assert policy.version.startswith("builtin-")
    for action in READ_ONLY_ACTIONS:
        assert policy.evaluate(ask(action)).decision == "pass"
    refund = policy.evaluate(ask("issue_refund", charge_id="ch_1", amount_cents=1))
    assert (refund.decision, refund.rule, refund.approvers, refund.required_approvals, refund.expires_in) == (
        "review", None, ["U012ABCDEF"], 1, timedelta(hours=24))
    assert policy.defaults.max_expires_in == timedelta(days=7)


def test_settings_approvers_fill_in_only_when_the_file_names_none():
    settings_approvers = ["U0SETTINGS"]
    assert load_policy(POLICIES / "custom_action.yaml", settings_approvers).defaults.approvers == ["U0SETTINGS"]
    assert load_policy(POLICIES / "contract_example.yaml", settings_approvers).defaults.approvers == [
        "U012ABCDEF", "S0FINANCE"]


def test_the_catalogue_fields_are_those_of_the_contract():
    assert DETAILS_FIELDS["issue_refund"] == {"charge_id", "payment_intent_id", "amount_cents", "currency",
                                              "reason", "customer_id", "metadata"}
    assert DETAILS_FIELDS["create_payout"] == {"amount_cents", "currency", "method", "destination",
                                               "description", "statement_descriptor"}
    assert DETAILS_FIELDS["submit_dispute_evidence"] == {"dispute_id", "evidence", "submit"}
    assert READ_ONLY_ACTIONS == {"retrieve_balance", "retrieve_charge", "list_refunds",
                                 "retrieve_subscription", "retrieve_dispute"}


# --- replay ---

def test_replay_counts_per_rule_and_lists_changed_outcomes(contract_policy):
    history = [
        ("apr_1", ask("retrieve_charge", charge_id="ch_1"), "pass", "read-only lookups"),
        ("apr_2", ask("issue_refund", charge_id="ch_1", amount_cents=300, reason="duplicate"), "review", None),
        ("apr_3", ask("create_payout", amount_cents=9_000_000, currency="usd"), "review", None),
        ("apr_4", ask("issue_refund", charge_id="ch_1", amount_cents=200_000), "review", "large refunds"),
        ("apr_5", ask("issue_refund", charge_id="ch_1"), "approve", "old rule"),
    ]
    report = replay(contract_policy, history)
    assert report.total == 5
    assert report.per_rule == {"read-only lookups": 1, "small duplicate refunds": 1, "very large payouts": 1,
                               "large refunds": 1, "(no rule: defaults)": 1}
    assert dict(report.per_decision) == {"pass": 1, "approve": 1, "reject": 1, "review": 2}
    assert [(c.approval_id, c.old_outcome, c.new_outcome, c.new_rule) for c in report.changes] == [
        ("apr_2", "review", "approve", "small duplicate refunds"),
        ("apr_3", "review", "reject", "very large payouts"),
        ("apr_5", "approve", "review", None),
    ]
    assert [approval_id for approval_id, _ in report.errors] == ["apr_5", "apr_5"]
    text = report.render()
    assert "Replayed 5 requests" in text and "Outcome would change for 3 requests:" in text
    assert any(line.split() == ["apr_3", "create_payout", "review", "reject", "very", "large", "payouts"]
               for line in text.splitlines())
    assert "apr_5: rule 'large refunds': no field 'amount_cents' in this request" in text


def test_replay_of_nothing():
    report = replay(default_policy(), [])
    assert report.total == 0 and "No outcome would change." in report.render()
