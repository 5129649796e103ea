"""Loading a policy: refusals with file, line and reason, versions, the built-in policy and the catalogue."""

import hashlib
import textwrap
from datetime import timedelta

import pytest

from api.policy import (
    PolicyError,
    PolicyInput,
    default_policy,
    load_policy,
    parse_policy,
)
from api.policy.catalogue import DETAILS_FIELDS, READ_ONLY_ACTIONS
from tests.policy_helpers import MONDAY_NOON_UTC, POLICIES, ask

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
