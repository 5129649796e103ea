"""When Stripe cannot be asked at intake, and when its facts change before execution; and the
velocity limits an agent can no longer reset with made-up labels. Over the real wire throughout."""

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from api.approvals.actors import Actor
from api.audit.models import AuditEvent
from api.outbox.models import Job
from tests.fakes.stripe import FakeStripe
from tests.stripe_facts_helpers import CUSTOMER, stripe_service, write_policy

OPS = Actor("operator", "U012ABCDEF", "ops")
READS = ("GET",)
SMALL_REFUNDS = """
  - name: one automatic refund per customer a day
    actions: [issue_refund]
    when: totals.customer.refunds_24h_count >= 1
    decision: review
  - name: small refunds
    actions: [issue_refund]
    when: has(details.amount_cents) && details.amount_cents <= 2000
    decision: approve
"""


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def service(make_settings, clock, fake, tmp_path):
    async with stripe_service(make_settings, clock, fake, policy_file=write_policy(tmp_path, SMALL_REFUNDS)) as running:
        running.events = []
        async def record(session, approval, event):
            running.events.append((approval.id, event))
        running.container.effects.subscribe(record)
        yield running


async def verify_job(service, approval_id: str) -> Job:
    async with service.container.db.read() as session:
        return await session.scalar(select(Job).where(Job.key == f"verify:{approval_id}"))


@pytest.mark.parametrize("status", [503, 429])
async def test_unreachable_stripe_accepts_unverified_never_auto_approves_and_verifies_later(
        service, fake, clock, status):
    charge = fake.add_charge(amount=5000)
    fake.fail_next(2, status, methods=READS)  # intake's read, then the first retry's
    body = await service.accepted("issue_refund", {"charge_id": charge["id"], "amount_cents": 1500})

    # The rule would approve 15.00 at once; unverified, it goes to people instead.
    assert body["status"] == "pending"
    assert body["stripeFacts"] == {"status": "unverified", "verifiedAt": None, "livemode": False, "facts": {},
                                   "warnings": ["not verified against Stripe"],
                                   "reason": f"Stripe answered {status}"}
    assert (body["approvalId"], "created") in service.events

    await service.container.worker.drain()
    job = await verify_job(service, body["approvalId"])
    assert (job.status, job.attempts) == ("queued", 1)
    assert (await service.get(body["approvalId"]))["stripeFacts"]["status"] == "unverified"

    clock.advance(hours=1)
    await service.container.worker.drain()
    later = await service.get(body["approvalId"])
    assert later["status"] == "pending"
    assert later["stripeFacts"]["status"] == "verified"
    assert later["stripeFacts"]["facts"]["charge"]["refundable"] == 5000
    assert later["details"]["currency"] == "usd" and later["details"]["customer_id"] == CUSTOMER
    assert (body["approvalId"], "verified") in service.events
    async with service.container.db.read() as session:
        audit = await session.scalars(select(AuditEvent.event).where(AuditEvent.approval_id == body["approvalId"]))
        assert "approval.verified" in audit.all()


async def test_a_contradiction_found_later_rejects_the_request_as_the_system(service, fake, clock):
    charge = fake.add_charge(amount=500_000, currency="usd")
    fake.fail_next(1, 500, methods=READS)
    body = await service.accepted("issue_refund", {"charge_id": charge["id"], "currency": "vnd",
                                                   "amount_cents": 500_000})
    assert body["status"] == "pending" and body["stripeFacts"]["status"] == "unverified"

    await service.container.worker.drain()
    final = await service.get(body["approvalId"])
    assert final["status"] == "rejected"
    assert final["decidedBy"]["type"] == "system"
    assert "details.currency" in final["decisionNote"] and "USD" in final["decisionNote"]
    assert (body["approvalId"], "rejected") in service.events
    assert fake.refunds == []


async def test_a_compatible_client_is_told_not_to_retry_a_contradiction(service, fake, clock):
    charge = fake.add_charge(amount=5000, customer="cus_RealOwner0001")
    fake.fail_next(1, 500, methods=READS)
    body = await service.accepted("issue_refund", {"charge_id": charge["id"], "customer_id": "cus_aaa"})
    await service.container.worker.drain()
    key = service.auth["Authorization"].removeprefix("Bearer ")
    response = await service.http.get(f"/api/approvals/{body['approvalId']}", headers={"x-api-key": key})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["retryable"]) == ("REJECTED", False)


async def test_a_charge_refunded_between_review_and_execution_is_not_refunded_again(service, fake):
    charge = fake.add_charge(amount=34900)
    body = await service.accepted("issue_refund", {"charge_id": charge["id"], "amount_cents": 34900})
    fake.add_refund(charge["id"], 34900)  # someone refunded it in the dashboard meanwhile
    await service.container.decisions.decide(body["approvalId"], OPS, "approve")
    await service.container.worker.drain()

    execution = (await service.get(body["approvalId"]))["execution"]
    assert execution["status"] == "failed"
    assert execution["error"]["code"] == "stripe_facts_changed"
    assert "fully refunded" in execution["error"]["message"]
    assert fake.requests_to("POST", "/v1/refunds") == []


async def test_execution_waits_for_stripe_to_confirm_the_request(service, fake, clock):
    charge = fake.add_charge(amount=34900)
    body = await service.accepted("issue_refund", {"charge_id": charge["id"], "amount_cents": 5000})
    await service.container.decisions.decide(body["approvalId"], OPS, "approve")
    fake.fail_next(1, 503, methods=READS)
    await service.container.worker.drain()
    assert (await service.get(body["approvalId"]))["execution"]["status"] == "queued"
    assert fake.requests_to("POST", "/v1/refunds") == []

    clock.advance(hours=1)
    await service.container.worker.drain()
    assert (await service.get(body["approvalId"]))["execution"]["status"] == "succeeded"
    assert len(fake.refunds) == 1


async def test_velocity_limits_cannot_be_reset_with_made_up_customers_or_currencies(service, fake):
    first, second, third = (fake.add_charge(amount=1500) for _ in range(3))
    # Without a customer id: Stripe's customer is filled in, so the refund counts for them.
    approved = await service.accepted("issue_refund", {"charge_id": first["id"], "amount_cents": 1500},
                                      execute=False)
    assert approved["status"] == "approved" and approved["details"]["customer_id"] == CUSTOMER
    # The old trick, a fresh label per request, is refused outright.
    await service.expect_refused("issue_refund", {"charge_id": second["id"], "amount_cents": 1500,
                                           "customer_id": "cus_aab"}, "customer_id")
    await service.expect_refused("issue_refund", {"charge_id": second["id"], "amount_cents": 1500,
                                           "currency": "aab"}, "currency")
    # And the honest next request meets the customer's total.
    reviewed = await service.accepted("issue_refund", {"charge_id": third["id"], "amount_cents": 1500})
    assert reviewed["status"] == "pending" and reviewed["rule"] == "one automatic refund per customer a day"


async def test_a_slow_stripe_leaves_the_request_unverified_after_the_short_timeout(fake):
    from datetime import UTC, datetime

    from api.execution.gateway import StripeGateway
    from api.facts import Verifier

    charge = fake.add_charge()
    gateway = StripeGateway("sk_test_cheqpoint", fake.url, verify_timeout=0.3)
    try:
        fake.delay_next(2.0, methods=READS)
        started = asyncio.get_running_loop().time()
        verification = await Verifier(gateway).verify("issue_refund", {"charge_id": charge["id"]}, datetime.now(UTC))
        waited = asyncio.get_running_loop().time() - started
    finally:
        await gateway.aclose()
    assert verification is not None and verification.status == "unverified"
    assert verification.reason == "Stripe could not be reached"
    assert waited < 1.5  # one read, not repeated: a timeout is not a dropped connection
    assert len(fake.requests_to("GET", f"/v1/charges/{charge['id']}")) == 1
