"""The fake Stripe serves objects Stripe could serve: each one read over HTTP through our gateway is
checked against its schema in the vendored spec (API 2023-08-16)."""

from collections.abc import Iterator

import pytest

from api.execution.gateway import StripeGateway
from tests.fakes.stripe import SPEC_PATH, FakeStripe
from tests.fakes.stripe.spec_objects import object_problems

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"{SPEC_PATH} is absent")


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def gateway(fake):
    gateway = StripeGateway("sk_test_cheqpoint", fake.url)
    yield gateway
    await gateway.aclose()


def expect_fits_spec(obj: dict, schema: str | None = None) -> None:
    assert object_problems(obj, schema) == [], obj


async def test_every_object_verification_reads_fits_the_spec(fake, gateway):
    fake.add_customer(customer_id="cus_Spec00000001", name="Ada", email="ada@example.com")
    charge = fake.add_charge(amount=5000, customer="cus_Spec00000001", age_days=3, risk_level="elevated",
                             card={"country": "GB"})
    fake.add_refund(charge["id"], 1000, age_days=1)
    intent = fake.add_payment_intent(amount=700, customer="cus_Spec00000001")
    dispute = fake.add_dispute(charge=charge["id"])
    price = fake.add_price(unit_amount=1200)
    subscription = fake.add_subscription(items=({"quantity": 2, "unit_amount": 1500},))
    item = subscription["items"]["data"][0]
    fake.add_bank_account("usd")
    fake.set_balance("usd", 9000, pending=100)

    expect_fits_spec(await gateway.retrieve_charge(charge["id"]))
    expect_fits_spec(await gateway.retrieve_payment_intent(intent["id"]))
    expect_fits_spec(await gateway.retrieve_customer("cus_Spec00000001"))
    charges = await gateway.list_charges({"customer": "cus_Spec00000001", "limit": 100, "expand": ["data.refunds"]})
    assert charges["data"] and all(object_problems(c) == [] for c in charges["data"])
    disputes = await gateway.list_disputes({"charge": charge["id"], "limit": 1})
    assert [d["id"] for d in disputes["data"]] == [dispute["id"]]
    expect_fits_spec(disputes["data"][0])
    expect_fits_spec(await gateway.retrieve_dispute(dispute["id"]))
    expect_fits_spec(await gateway.retrieve_price(price["id"]))
    expect_fits_spec(await gateway.retrieve_subscription(subscription["id"]))
    expect_fits_spec(await gateway.retrieve_balance())
    expect_fits_spec(await gateway.retrieve_account())
    expect_fits_spec(await gateway.upcoming_invoice({"subscription": subscription["id"]}))
    expect_fits_spec(await gateway.upcoming_invoice({
        "subscription": subscription["id"], "subscription_proration_behavior": "create_prorations",
        "subscription_items": [{"id": item["id"], "quantity": 3}, {"price": price["id"], "quantity": 1}]}))


async def test_every_object_the_writes_answer_fits_the_spec(fake, gateway):
    charge = fake.add_charge(amount=5000)
    expect_fits_spec(await gateway.create_refund({"charge": charge["id"], "amount": 100}, idempotency_key="k1"))
    expect_fits_spec(await gateway.create_payout({"amount": 100, "currency": "usd"}, idempotency_key="k2"))
    subscription = fake.add_subscription()
    expect_fits_spec(await gateway.update_subscription(subscription["id"], {"cancel_at_period_end": True},
                                                       idempotency_key="k3"))
    expect_fits_spec(await gateway.cancel_subscription(subscription["id"], {}, idempotency_key="k4"))
    dispute = fake.add_dispute()
    expect_fits_spec(await gateway.update_dispute(dispute["id"], {"evidence": {"uncategorized_text": "x"},
                                                                  "submit": False}, idempotency_key="k5"))
    expect_fits_spec(await gateway.close_dispute(dispute["id"], idempotency_key="k6"))


def test_the_check_catches_what_stripe_would_never_send(fake):
    charge = fake.add_charge()
    broken = {**charge, "disputed": "no", "risk": 1}
    del broken["captured"]
    found = object_problems(broken)
    assert "charge.captured: required by the spec, missing" in found
    assert "charge.disputed: str where the spec has boolean" in found
    assert "charge.risk: not a field of this object in the spec" in found


async def test_the_upcoming_invoice_query_is_checked_against_the_spec(fake, gateway):
    from api.execution.gateway import StripeFinal

    subscription = fake.add_subscription()
    with pytest.raises(StripeFinal) as refused:
        await gateway.upcoming_invoice({"subscription": subscription["id"], "subscription_prorate": "yes"})
    assert refused.value.code == "parameter_unknown"
