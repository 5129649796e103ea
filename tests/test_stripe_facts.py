"""Refunds verified against the charge before anyone reviews them (issue 9), over the real wire:
HTTP to the app, the app's StripeGateway to the fake Stripe. Each attack is refused with a 422 that
locates the field, and nothing is stored."""

import asyncio
from collections.abc import Iterator

import pytest

from tests.fakes.stripe import FakeStripe
from tests.stripe_facts_helpers import CUSTOMER, stripe_service


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def service(make_settings, clock, fake):
    async with stripe_service(make_settings, clock, fake) as running:
        yield running


async def test_a_vnd_label_on_a_usd_charge_is_refused(service, fake):
    # The attack: 500,000 "VND" (about $20) shown to reviewers, executed as $5,000.00.
    charge = fake.add_charge(amount=500_000, currency="usd")
    problem = await service.expect_refused("issue_refund", {"charge_id": charge["id"], "currency": "vnd",
                                                     "amount_cents": 500_000}, "currency")
    assert "USD" in problem["errors"][0]["msg"] and "VND" in problem["errors"][0]["msg"]
    assert fake.refunds == []


async def test_a_customer_id_that_is_not_the_charges_customer_is_refused(service, fake):
    charge = fake.add_charge(customer="cus_RealOwner0001")
    problem = await service.expect_refused("issue_refund", {"charge_id": charge["id"], "customer_id": "cus_aaa"},
                                    "customer_id")
    assert "cus_RealOwner0001" in problem["errors"][0]["msg"]


async def test_a_refund_above_what_is_still_refundable_is_refused(service, fake):
    charge = fake.add_charge(amount=34900, amount_refunded=30000)
    problem = await service.expect_refused("issue_refund", {"charge_id": charge["id"], "amount_cents": 10000},
                                    "amount_cents")
    assert "$49.00 USD" in problem["errors"][0]["msg"]


async def test_a_fully_refunded_charge_cannot_be_asked_again(service, fake):
    charge = fake.add_charge(amount=34900, amount_refunded=34900)
    await service.expect_refused("issue_refund", {"charge_id": charge["id"]}, "charge_id")
    intent = fake.add_payment_intent(amount=1000)
    fake.charges[intent["latest_charge"]]["amount_refunded"] = 1000
    await service.expect_refused("issue_refund", {"payment_intent_id": intent["id"]}, "payment_intent_id")


async def test_an_unknown_charge_is_refused(service, fake):
    problem = await service.expect_refused("issue_refund", {"charge_id": "ch_DoesNotExist0001"}, "charge_id")
    assert "no such charge" in problem["errors"][0]["msg"]


async def test_a_live_mode_charge_is_refused_with_a_test_key(service, fake):
    charge = fake.add_charge(livemode=True)
    problem = await service.expect_refused("issue_refund", {"charge_id": charge["id"]}, "charge_id")
    assert "live-mode" in problem["errors"][0]["msg"]


async def test_a_test_mode_charge_is_refused_with_a_live_key(make_settings, clock, fake):
    charge = fake.add_charge()
    async with stripe_service(make_settings, clock, fake, key="sk_live_cheqpoint") as service:
        problem = await service.expect_refused("issue_refund", {"charge_id": charge["id"]}, "charge_id")
    assert "test-mode" in problem["errors"][0]["msg"]


async def test_currency_and_customer_are_filled_from_stripe_and_the_facts_stored(service, fake):
    fake.add_customer(customer_id="cus_Facts0000001", name="Ada Lovelace", email="ada@example.com")
    charge = fake.add_charge(amount=34900, customer="cus_Facts0000001", age_days=94.5, risk_level="elevated",
                             card={"brand": "mastercard", "last4": "4444", "country": "GB"},
                             amount_refunded=900)
    for age in (10, 40, 80):
        earlier = fake.add_charge(amount=2000, customer="cus_Facts0000001", age_days=age)
        fake.add_refund(earlier["id"], 2000, age_days=age)
    old = fake.add_charge(amount=2000, customer="cus_Facts0000001", age_days=200)
    fake.add_refund(old["id"], 2000, age_days=120)  # outside the 90 days

    body = await service.accepted("issue_refund", {"charge_id": charge["id"], "amount_cents": 10000})

    assert body["details"] == {"charge_id": charge["id"], "amount_cents": 10000, "currency": "usd",
                               "customer_id": "cus_Facts0000001"}
    facts = body["stripeFacts"]
    assert facts["status"] == "verified" and facts["livemode"] is False and facts["verifiedAt"]
    assert facts["facts"]["charge"] == {
        "id": charge["id"], "amount": 34900, "currency": "usd", "created": facts["facts"]["charge"]["created"],
        "age_days": 94, "amount_refunded": 900, "refundable": 34000, "disputed": False, "dispute_status": None,
        "risk_level": "elevated", "payment_method": {"brand": "mastercard", "last4": "4444", "country": "GB"}}
    assert facts["facts"]["customer"] == {"id": "cus_Facts0000001", "name": "Ada Lovelace",
                                          "email": "ada@example.com", "refunds_90d": {"count": 3, "amount": 6000}}
    assert facts["warnings"] == ["charge is 94 days old", "Radar risk level is elevated",
                                 "customer already refunded 3 times in the last 90 days"]


async def test_a_disputed_charge_says_so(service, fake):
    charge = fake.add_charge(amount=5000)
    fake.add_dispute(charge=charge["id"], amount=5000, status="warning_needs_response")
    body = await service.accepted("issue_refund", {"charge_id": charge["id"], "amount_cents": 1000})
    assert body["stripeFacts"]["facts"]["charge"]["disputed"] is True
    assert body["stripeFacts"]["facts"]["charge"]["dispute_status"] == "warning_needs_response"
    assert "charge is disputed (warning_needs_response)" in body["stripeFacts"]["warnings"]


async def test_a_burst_about_one_charge_reads_it_once(service, fake):
    charge = fake.add_charge(amount=100_000)
    bodies = await asyncio.gather(*(service.accepted("issue_refund", {"charge_id": charge["id"], "amount_cents": 100})
                                    for _ in range(8)))
    assert all(body["stripeFacts"]["status"] == "verified" for body in bodies)
    assert len(fake.requests_to("GET", f"/v1/charges/{charge['id']}")) == 1
    assert len(fake.requests_to("GET", f"/v1/customers/{CUSTOMER}")) == 1


async def test_without_stripe_configured_nothing_is_verified(client, auth):
    from tests.conftest import REFUND

    response = await client.post("/v1/approvals", json=REFUND, headers=auth)
    assert response.status_code == 202, response.text
    assert response.json()["stripeFacts"] is None
