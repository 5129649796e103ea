"""Replaying requests against a policy: counts per rule and the outcomes that would change."""



from api.policy import (
    default_policy,
    replay,
)
from tests import policy_helpers
from tests.policy_helpers import ask

contract_policy = policy_helpers.contract_policy  # the fixture: CONTRACT §6's example policy


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
