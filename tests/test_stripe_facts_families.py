"""Payouts, subscriptions and disputes verified against Stripe before review, over the real wire."""

from collections.abc import Iterator

import pytest

from tests.fakes.stripe import FakeStripe
from tests.stripe_facts_helpers import stripe_service, write_policy


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def service(make_settings, clock, fake):
    async with stripe_service(make_settings, clock, fake) as running:
        yield running


# -- payouts ----------------------------------------------------------------------------------------


async def test_a_payout_above_the_available_balance_is_warned_and_shows_the_balance(service, fake):
    fake.set_balance("usd", 50_000, pending=12_000)
    bank = fake.add_bank_account("usd", bank_name="STRIPE TEST BANK", last4="6789")
    body = await service.accepted("create_payout", {"amount_cents": 80_000, "currency": "usd"})
    assert body["status"] == "pending"
    facts = body["stripeFacts"]
    assert facts["facts"] == {"balance": {"currency": "usd", "available": 50_000, "pending": 12_000},
                              "destination": {"id": bank["id"], "type": "bank_account",
                                              "bank_name": "STRIPE TEST BANK", "last4": "6789"}}
    assert facts["warnings"] == ["payout exceeds available balance"]


async def test_the_policy_decides_what_a_payout_above_the_balance_means(make_settings, clock, fake, tmp_path):
    policy = write_policy(tmp_path, """
  - name: more than there is
    actions: [create_payout]
    when: details.amount_cents > stripe.balance.available
    decision: reject
    note: The balance cannot cover this payout.
  - name: payouts
    actions: [create_payout]
    decision: approve
""")
    fake.set_balance("usd", 50_000)
    async with stripe_service(make_settings, clock, fake, policy_file=policy) as service:
        over = await service.accepted("create_payout", {"amount_cents": 80_000, "currency": "usd"})
        within = await service.accepted("create_payout", {"amount_cents": 20_000, "currency": "usd"},
                                        execute=False)
    assert (over["status"], over["decisionNote"]) == ("rejected", "The balance cannot cover this payout.")
    assert within["status"] == "approved"


async def test_a_payout_in_a_currency_the_account_does_not_hold_is_refused(service, fake):
    problem = await service.expect_refused("create_payout", {"amount_cents": 1000, "currency": "eur"}, "currency")
    assert "EUR" in problem["errors"][0]["msg"]


async def test_a_payout_to_a_destination_the_account_does_not_have_is_refused(service, fake):
    fake.add_bank_account("usd")
    await service.expect_refused("create_payout",
                                 {"amount_cents": 1000, "currency": "usd", "destination": "ba_Unknown01"},
                                 "destination")


# -- subscriptions ----------------------------------------------------------------------------------


async def test_a_canceled_subscription_is_refused(service, fake):
    for status in ("canceled", "incomplete_expired"):
        subscription = fake.add_subscription(status=status)
        problem = await service.expect_refused("cancel_subscription", {"subscription_id": subscription["id"]},
                                        "subscription_id")
        assert status in problem["errors"][0]["msg"]


async def test_an_item_or_price_the_subscription_does_not_have_is_refused(service, fake):
    subscription = fake.add_subscription()
    await service.expect_refused("update_subscription", {"subscription_id": subscription["id"],
                                                  "items": [{"id": "si_NotThisOne01", "quantity": 2}]}, "items.0.id")
    await service.expect_refused("update_subscription", {"subscription_id": subscription["id"],
                                                  "items": [{"price": "price_Missing001"}]}, "items.0.price")
    archived = fake.add_price(active=False)
    await service.expect_refused("update_subscription", {"subscription_id": subscription["id"],
                                                  "items": [{"price": archived["id"]}]}, "items.0.price")
    euros = fake.add_price(currency="eur")
    await service.expect_refused("update_subscription", {"subscription_id": subscription["id"],
                                                  "items": [{"price": euros["id"]}]}, "items.0.price")


async def test_a_subscription_change_shows_the_plan_the_next_invoice_and_stripes_preview(service, fake):
    subscription = fake.add_subscription(items=({"quantity": 2, "unit_amount": 1500},))
    item = subscription["items"]["data"][0]
    body = await service.accepted("update_subscription", {
        "subscription_id": subscription["id"], "items": [{"id": item["id"], "quantity": 4}],
        "proration_behavior": "create_prorations"})
    facts = body["stripeFacts"]["facts"]
    assert facts["subscription"]["status"] == "active" and facts["subscription"]["currency"] == "usd"
    assert facts["subscription"]["items"] == [{
        "id": item["id"], "price": item["price"]["id"], "product": item["price"]["product"], "unit_amount": 1500,
        "quantity": 2, "interval": "month"}]
    assert facts["next_invoice"]["amount"] == 3000 and facts["next_invoice"]["currency"] == "usd"
    # Four seats from the next period, plus half a period of the two added now.
    assert facts["preview"] == {"amount_due": 6000 + 1500, "currency": "usd", "proration_amount": 1500}
    preview = fake.requests_to("GET", "/v1/invoices/upcoming")
    assert any(r.params.get("subscription_items") == [{"id": item["id"], "quantity": "4"}] for r in preview)


async def test_a_cancellation_has_no_preview(service, fake):
    subscription = fake.add_subscription()
    body = await service.accepted("cancel_subscription", {"subscription_id": subscription["id"]})
    assert body["stripeFacts"]["facts"]["preview"] is None
    assert body["stripeFacts"]["facts"]["next_invoice"]["amount"] == 2000


# -- disputes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["close_dispute", "submit_dispute_evidence"])
async def test_a_dispute_no_longer_open_is_refused(service, fake, action):
    for status in ("won", "lost", "under_review"):
        dispute = fake.add_dispute(status=status)
        details = {"dispute_id": dispute["id"]}
        if action == "submit_dispute_evidence":
            details["evidence"] = {"uncategorized_text": "Delivered on time."}
        problem = await service.expect_refused(action, details, "dispute_id")
        assert status in problem["errors"][0]["msg"]


async def test_an_open_dispute_shows_reason_amount_and_deadline(service, fake):
    dispute = fake.add_dispute(amount=4200, reason="fraudulent", due_in_days=1.5)
    body = await service.accepted("close_dispute", {"dispute_id": dispute["id"]})
    facts = body["stripeFacts"]
    assert facts["facts"]["dispute"] == {
        "id": dispute["id"], "status": "needs_response", "reason": "fraudulent", "amount": 4200, "currency": "usd",
        "evidence_due_by": facts["facts"]["dispute"]["evidence_due_by"], "charge": dispute["charge"]}
    assert facts["facts"]["dispute"]["evidence_due_by"].endswith("Z")
    assert facts["warnings"] == ["evidence is due in 1 day"]


async def test_a_live_mode_dispute_is_refused_with_a_test_key(service, fake):
    dispute = fake.add_dispute(livemode=True)
    await service.expect_refused("close_dispute", {"dispute_id": dispute["id"]}, "dispute_id")
