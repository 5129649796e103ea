"""Rules that read Stripe's facts (`stripe.*`): at intake over HTTP, in `cheqpoint policy check`,
and in `cheqpoint policy replay`, which decides on the facts recorded at the time."""

from collections.abc import Iterator

import pytest

from tests.fakes.stripe import FakeStripe
from tests.stripe_facts_helpers import stripe_service, write_policy
from tests.test_policy_cli import changed, cheqpoint

STRIPE_RULES = """
  - name: old charges
    actions: [issue_refund]
    when: stripe.charge.age_days > 60
    decision: reject
    note: Charges older than 60 days are refunded by finance only.
  - name: frequent refunders
    actions: [issue_refund]
    when: stripe.customer.refunds_90d.count >= 3
    decision: review
    required_approvals: 2
  - name: risky charges
    actions: [issue_refund]
    when: stripe.charge.risk_level == "elevated"
    decision: review
  - name: verified small refunds
    actions: [issue_refund]
    when: stripe.status == "verified" && details.amount_cents <= 2000
    decision: approve
"""


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


async def test_rules_decide_on_stripes_facts(make_settings, clock, fake, tmp_path):
    policy = write_policy(tmp_path, STRIPE_RULES)
    old = fake.add_charge(amount=5000, age_days=94)
    fake.add_customer(customer_id="cus_Frequent00001")
    frequent = fake.add_charge(amount=5000, customer="cus_Frequent00001")
    for _ in range(3):
        fake.add_refund(fake.add_charge(amount=100, customer="cus_Frequent00001")["id"], 100, age_days=5)
    risky = fake.add_charge(amount=5000, risk_level="elevated")
    plain = fake.add_charge(amount=5000)
    async with stripe_service(make_settings, clock, fake, policy_file=policy) as service:
        rejected = await service.accepted("issue_refund", {"charge_id": old["id"], "amount_cents": 1000})
        two = await service.accepted("issue_refund", {"charge_id": frequent["id"], "amount_cents": 1000})
        reviewed = await service.accepted("issue_refund", {"charge_id": risky["id"], "amount_cents": 1000})
        approved = await service.accepted("issue_refund", {"charge_id": plain["id"], "amount_cents": 1000},
                                          execute=False)
    assert (rejected["status"], rejected["rule"]) == ("rejected", "old charges")
    assert (two["status"], two["requiredApprovals"]) == ("pending", 2)
    assert (reviewed["status"], reviewed["rule"]) == ("pending", "risky charges")
    assert (approved["status"], approved["rule"]) == ("approved", "verified small refunds")


async def test_without_stripe_a_rule_reading_facts_never_approves(make_settings, clock, tmp_path):
    from tests.conftest import REFUND
    from tests.test_policy_flow import serving

    policy = write_policy(tmp_path, """
  - name: young charges
    actions: [issue_refund]
    when: stripe.charge.age_days < 30
    decision: approve
""")
    async with serving(make_settings(policy_file=policy), clock) as service:
        body = await service.post({**REFUND, "details": {**REFUND["details"], "amount_cents": 100}}, 202)
    assert body["status"] == "pending" and body["stripeFacts"] is None


@pytest.mark.parametrize(("condition", "expected"), [
    ("stripe.chrge.age_days > 60", "'stripe.chrge' is not a Stripe fact (did you mean 'charge'?); the facts are: "
                                   "balance, charge, customer, destination, dispute, livemode"),
    ("stripe.charge.age_dayz > 60",
     "'stripe.charge.age_dayz' is not a fact of stripe.charge (did you mean 'age_days'?)"),
    ("stripe.customer.refunds_90d.count >= 3 && stripe.balance.available > 0 && stripe.status == 'verified'",
     None),
])
def test_policy_check_knows_the_stripe_names(tmp_path, condition, expected):
    policy = write_policy(tmp_path, f"""
  - name: with facts
    when: {condition}
    decision: review
""")
    result = cheqpoint("policy", "check", policy)
    if expected is None:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0
        assert expected in result.stdout + result.stderr


async def test_replay_decides_on_the_facts_recorded_at_the_time(make_settings, clock, fake, tmp_path,
                                                                database_url):
    calm = fake.add_charge(amount=5000)
    risky = fake.add_charge(amount=5000, risk_level="elevated")
    async with stripe_service(make_settings, clock, fake) as service:  # the built-in policy: review all
        calm_id = (await service.accepted("issue_refund", {"charge_id": calm["id"], "amount_cents": 100}))["approvalId"]
        risky_id = (await service.accepted("issue_refund", {"charge_id": risky["id"], "amount_cents": 100}))[
            "approvalId"]
    # Radar changes its mind afterwards; a replay must not see today's Stripe (it does not ask it).
    fake.charges[calm["id"]]["outcome"]["risk_level"] = "elevated"
    fake.charges[risky["id"]]["outcome"]["risk_level"] = "normal"
    policy = write_policy(tmp_path, """
  - name: risky charges
    actions: [issue_refund]
    when: stripe.charge.risk_level == "elevated"
    decision: reject
    note: Radar says no.
  - name: the rest
    actions: [issue_refund]
    decision: review
""")
    requests_before = len(fake.requests)
    result = cheqpoint("policy", "replay", policy, database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert changed(result.stdout) == {risky_id: ("review", "reject")}
    assert calm_id not in changed(result.stdout)
    assert len(fake.requests) == requests_before


async def test_a_rule_may_read_the_warnings_and_the_status(make_settings, clock, fake, tmp_path):
    policy = write_policy(tmp_path, """
  - name: nothing to warn about
    actions: [issue_refund]
    when: stripe.status == "verified" && size(stripe.warnings) == 0
    decision: approve
""")
    calm = fake.add_charge(amount=5000)
    old = fake.add_charge(amount=5000, age_days=70)
    async with stripe_service(make_settings, clock, fake, policy_file=policy) as service:
        approved = await service.accepted("issue_refund", {"charge_id": calm["id"], "amount_cents": 100},
                                          execute=False)
        reviewed = await service.accepted("issue_refund", {"charge_id": old["id"], "amount_cents": 100})
    assert approved["status"] == "approved"
    assert reviewed["status"] == "pending" and reviewed["stripeFacts"]["warnings"] == ["charge is 70 days old"]
