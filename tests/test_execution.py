"""Execution of every catalogue action over the real wire:
POST /v1/approvals → decision → worker → StripeGateway → StripeClient → HTTP → the fake Stripe API.

Faults, crashes and races are in test_execution_faults.py.
"""

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.actions import EditRejected
from api.approvals.actors import Actor
from api.config import Settings
from api.connections import service as connections
from api.execution.job import idempotency_key
from api.main import Container, build_container, create_app, running
from api.outbox.models import Job
from tests.conftest import Clock
from tests.fakes.stripe import FakeStripe

OPS = Actor("operator", "UOPS", "ops")
WRITES = ("POST", "DELETE")


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def stripe_container(make_settings: Callable[..., Settings], clock: Clock,
                           fake: FakeStripe) -> AsyncIterator[Container]:
    """The whole service with Stripe configured against the fake; its worker is driven by hand."""
    settings = make_settings(stripe_secret_key="sk_test_cheqpoint", stripe_api_base=fake.url)
    built = build_container(settings, clock=clock)
    async with running(built, worker=False):
        yield built


@pytest.fixture
async def api(stripe_container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(stripe_container.settings, container=stripe_container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cheqpoint.test") as http:
        yield http


@pytest.fixture
async def agent(stripe_container: Container) -> dict[str, str]:
    created = await stripe_container.db.write(lambda session: connections.create(session, "billing-agent"))
    return {"Authorization": f"Bearer {created.key}"}


def writes(fake: FakeStripe) -> list[tuple[str, str]]:
    """What was sent to Stripe that changes something (verification only reads)."""
    return [(r.method, r.path) for r in fake.requests if r.method in WRITES]


async def submit(api: httpx.AsyncClient, agent: dict[str, str], action: str, details: dict[str, Any],
                 **extra: Any) -> httpx.Response:
    body = {"action": action, "summary": f"{action} requested by the billing agent", "details": details, **extra}
    return await api.post("/v1/approvals", json=body, headers=agent)


async def request(api: httpx.AsyncClient, agent: dict[str, str], action: str, details: dict[str, Any],
                  **extra: Any) -> str:
    """A request that waits for review; its id."""
    response = await submit(api, agent, action, details, **extra)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    return response.json()["approvalId"]


async def approve_and_execute(api: httpx.AsyncClient, agent: dict[str, str], container: Container,
                              approval_id: str, edits: dict[str, Any] | None = None) -> dict[str, Any]:
    """An operator approves (with edits), the worker runs what is due; the approval as the agent reads it."""
    result = await container.decisions.decide(approval_id, OPS, "approve", edits=edits)
    assert result.outcome == "decided"
    await container.worker.drain()
    response = await api.get(f"/v1/approvals/{approval_id}", headers=agent)
    assert response.status_code == 200
    return response.json()


def only_write(fake: FakeStripe) -> Any:
    """The one write the fake received, checked to carry the approval's idempotency key."""
    writes = [r for r in fake.requests if r.method in WRITES]
    assert len(writes) == 1, [(r.method, r.path) for r in writes]
    return writes[0]


def succeeded(body: dict[str, Any], object_id: str) -> dict[str, Any]:
    execution = body["execution"]
    assert body["status"] == "approved"
    assert execution["status"] == "succeeded", execution
    assert execution["error"] is None
    assert execution["stripeObjectId"] == object_id
    assert execution["result"]["id"] == object_id
    return execution["result"]


# -- issue_refund ------------------------------------------------------------------------------------


async def test_partial_refund_of_a_charge_lowered_by_the_reviewer(api, agent, stripe_container, fake):
    charge = fake.add_charge(amount=34900, currency="usd", customer="cus_QaAbCdEfGhIjK")
    approval_id = await request(api, agent, "issue_refund", {
        "charge_id": charge["id"], "amount_cents": 34900, "currency": "usd", "reason": "duplicate",
        "customer_id": "cus_QaAbCdEfGhIjK", "metadata": {"ticket": "T-1001"}})

    body = await approve_and_execute(api, agent, stripe_container, approval_id,
                                     edits={"amount_cents": 17450, "reason": "requested_by_customer"})

    sent = only_write(fake)
    assert (sent.method, sent.path) == ("POST", "/v1/refunds")
    # The reviewer's amount and reason, not the agent's; customer_id is context and is not sent.
    assert sent.params == {"charge": charge["id"], "amount": "17450", "reason": "requested_by_customer",
                           "metadata": {"ticket": "T-1001"}}
    assert sent.idempotency_key == idempotency_key(approval_id) == f"cheqpoint-execute-{approval_id}"
    assert body["modifiedDetails"]["amount_cents"] == 17450
    assert body["changes"] == {"amount_cents": {"from": 34900, "to": 17450},
                               "reason": {"from": "duplicate", "to": "requested_by_customer"}}
    result = succeeded(body, fake.refunds[0]["id"])
    assert result["amount"] == 17450 and result["object"] == "refund" and result["status"] == "succeeded"
    assert len(fake.refunds) == 1
    assert fake.charges[charge["id"]]["amount_refunded"] == 17450


async def test_whole_refund_of_a_charge(api, agent, stripe_container, fake):
    charge = fake.add_charge(amount=5000, currency="eur")
    approval_id = await request(api, agent, "issue_refund", {"charge_id": charge["id"]})

    body = await approve_and_execute(api, agent, stripe_container, approval_id)

    sent = only_write(fake)
    assert sent.params == {"charge": charge["id"]}  # no amount: Stripe refunds what is left
    assert sent.idempotency_key == idempotency_key(approval_id)
    result = succeeded(body, fake.refunds[0]["id"])
    assert (result["amount"], result["currency"]) == (5000, "eur")
    assert fake.charges[charge["id"]]["refunded"] is True


async def test_partial_refund_of_a_payment_intent(api, agent, stripe_container, fake):
    intent = fake.add_payment_intent(amount=20000, currency="usd")
    approval_id = await request(api, agent, "issue_refund", {
        "payment_intent_id": intent["id"], "amount_cents": 7500, "currency": "usd", "reason": "fraudulent"})

    body = await approve_and_execute(api, agent, stripe_container, approval_id)

    sent = only_write(fake)
    assert sent.params == {"payment_intent": intent["id"], "amount": "7500", "reason": "fraudulent"}
    assert sent.idempotency_key == idempotency_key(approval_id)
    result = succeeded(body, fake.refunds[0]["id"])
    assert result["amount"] == 7500
    assert result["payment_intent"] == intent["id"] and result["charge"] == intent["latest_charge"]


async def test_whole_refund_of_a_payment_intent(api, agent, stripe_container, fake):
    intent = fake.add_payment_intent(amount=1200, currency="jpy")
    approval_id = await request(api, agent, "issue_refund", {"payment_intent_id": intent["id"]})

    body = await approve_and_execute(api, agent, stripe_container, approval_id)

    assert only_write(fake).params == {"payment_intent": intent["id"]}
    result = succeeded(body, fake.refunds[0]["id"])
    assert (result["amount"], result["currency"]) == (1200, "jpy")


async def test_a_reviewer_may_raise_a_refund_only_within_what_is_still_refundable(api, agent, stripe_container,
                                                                                 fake):
    # 34,900 charged, 10,000 refunded earlier: 24,900 is all Stripe can still give back.
    charge = fake.add_charge(amount=34900, currency="usd", amount_refunded=10000)
    approval_id = await request(api, agent, "issue_refund", {
        "charge_id": charge["id"], "amount_cents": 10000, "currency": "usd"})

    with pytest.raises(EditRejected) as refused:
        await stripe_container.decisions.decide(approval_id, OPS, "approve", edits={"amount_cents": 24901})
    assert refused.value.field == "amount_cents"
    assert "$249.00" in refused.value.message
    unchanged = (await api.get(f"/v1/approvals/{approval_id}", headers=agent)).json()
    assert unchanged["status"] == "pending" and unchanged["modifiedDetails"] is None
    assert [r for r in fake.requests if r.method in WRITES] == []

    body = await approve_and_execute(api, agent, stripe_container, approval_id, edits={"amount_cents": 24900})

    assert only_write(fake).params == {"charge": charge["id"], "amount": "24900"}
    assert body["changes"] == {"amount_cents": {"from": 10000, "to": 24900}}
    assert succeeded(body, fake.refunds[0]["id"])["amount"] == 24900
    assert fake.charges[charge["id"]]["refunded"] is True


# -- create_payout -----------------------------------------------------------------------------------


async def test_payout_lowered_by_the_reviewer(api, agent, stripe_container, fake):
    fake.set_balance("usd", 100_000)
    approval_id = await request(api, agent, "create_payout", {
        "amount_cents": 50000, "currency": "usd", "method": "instant", "description": "Weekly payout",
        "statement_descriptor": "CHEQPOINT WEEKLY"})

    body = await approve_and_execute(api, agent, stripe_container, approval_id,
                                     edits={"amount_cents": 30000, "method": "standard"})

    sent = only_write(fake)
    assert (sent.method, sent.path) == ("POST", "/v1/payouts")
    assert sent.params == {"amount": "30000", "currency": "usd", "method": "standard",
                           "description": "Weekly payout", "statement_descriptor": "CHEQPOINT WEEKLY"}
    assert sent.idempotency_key == idempotency_key(approval_id)
    result = succeeded(body, fake.payouts[0]["id"])
    assert (result["amount"], result["method"], result["object"]) == (30000, "standard", "payout")
    assert fake.available["usd"] == 70_000


async def test_a_payout_cannot_be_raised(api, agent, stripe_container, fake):
    approval_id = await request(api, agent, "create_payout", {"amount_cents": 50000, "currency": "usd"})
    with pytest.raises(EditRejected):
        await stripe_container.decisions.decide(approval_id, OPS, "approve", edits={"amount_cents": 50001})
    await stripe_container.worker.drain()
    assert writes(fake) == [] and fake.payouts == []


# -- subscriptions -----------------------------------------------------------------------------------


async def test_cancel_subscription_now(api, agent, stripe_container, fake):
    subscription = fake.add_subscription()
    approval_id = await request(api, agent, "cancel_subscription", {
        "subscription_id": subscription["id"], "prorate": True, "invoice_now": True})

    body = await approve_and_execute(api, agent, stripe_container, approval_id, edits={"invoice_now": False})

    sent = only_write(fake)
    assert (sent.method, sent.path) == ("DELETE", f"/v1/subscriptions/{subscription['id']}")
    assert sent.params == {"prorate": "true", "invoice_now": "false"}
    assert sent.idempotency_key == idempotency_key(approval_id)  # Stripe ignores it on DELETE
    result = succeeded(body, subscription["id"])
    assert result["status"] == "canceled"
    assert fake.subscriptions[subscription["id"]]["status"] == "canceled"


async def test_cancel_subscription_at_period_end(api, agent, stripe_container, fake):
    subscription = fake.add_subscription()
    approval_id = await request(api, agent, "cancel_subscription", {
        "subscription_id": subscription["id"], "at_period_end": False, "prorate": True})

    # The reviewer softens an immediate cancellation into one at the end of the period.
    body = await approve_and_execute(api, agent, stripe_container, approval_id, edits={"at_period_end": True})

    sent = only_write(fake)
    assert (sent.method, sent.path) == ("POST", f"/v1/subscriptions/{subscription['id']}")
    assert sent.params == {"cancel_at_period_end": "true"}  # prorate means nothing for a later end
    assert sent.idempotency_key == idempotency_key(approval_id)
    result = succeeded(body, subscription["id"])
    assert result["status"] == "active" and result["cancel_at_period_end"] is True
    assert result["cancel_at"] == subscription["current_period_end"]


async def test_update_subscription_quantity_and_proration(api, agent, stripe_container, fake):
    subscription = fake.add_subscription(items=({"quantity": 5, "unit_amount": 2000},))
    item_id = subscription["items"]["data"][0]["id"]
    approval_id = await request(api, agent, "update_subscription", {
        "subscription_id": subscription["id"], "items": [{"id": item_id, "quantity": 10}],
        "proration_behavior": "always_invoice"})

    body = await approve_and_execute(api, agent, stripe_container, approval_id,
                                     edits={"items.0.quantity": 8, "proration_behavior": "create_prorations"})

    sent = only_write(fake)
    assert (sent.method, sent.path) == ("POST", f"/v1/subscriptions/{subscription['id']}")
    assert sent.params == {"items": [{"id": item_id, "quantity": "8"}], "proration_behavior": "create_prorations"}
    assert sent.idempotency_key == idempotency_key(approval_id)
    assert body["modifiedDetails"]["items"] == [{"id": item_id, "quantity": 8}]
    result = succeeded(body, subscription["id"])
    assert [(i["id"], i["quantity"]) for i in result["items"]["data"]] == [(item_id, 8)]


# -- disputes ----------------------------------------------------------------------------------------


async def test_close_dispute(api, agent, stripe_container, fake):
    dispute = fake.add_dispute(amount=4200)
    approval_id = await request(api, agent, "close_dispute", {"dispute_id": dispute["id"]})

    body = await approve_and_execute(api, agent, stripe_container, approval_id)

    sent = only_write(fake)
    assert (sent.method, sent.path) == ("POST", f"/v1/disputes/{dispute['id']}/close")
    assert sent.params == {}
    assert sent.idempotency_key == idempotency_key(approval_id)
    assert succeeded(body, dispute["id"])["status"] == "lost"


async def test_submit_dispute_evidence(api, agent, stripe_container, fake):
    dispute = fake.add_dispute(amount=4200)
    evidence = {"customer_name": "Ada Lovelace", "uncategorized_text": "Delivered and signed for.",
                "shipping_tracking_number": "1Z999AA10123456784"}
    approval_id = await request(api, agent, "submit_dispute_evidence", {
        "dispute_id": dispute["id"], "evidence": evidence, "submit": False})

    # The agent only staged the evidence; the reviewer sends it to the bank.
    body = await approve_and_execute(api, agent, stripe_container, approval_id, edits={"submit": True})

    sent = only_write(fake)
    assert (sent.method, sent.path) == ("POST", f"/v1/disputes/{dispute['id']}")
    assert sent.params == {"evidence": evidence, "submit": "true"}
    assert sent.idempotency_key == idempotency_key(approval_id)
    result = succeeded(body, dispute["id"])
    assert result["status"] == "under_review" and result["evidence"]["customer_name"] == "Ada Lovelace"


# -- read-only actions: at intake, without review ----------------------------------------------------


async def test_read_only_actions_pass_at_intake_with_the_result_inline(api, agent, stripe_container, fake):
    charge = fake.add_charge(amount=34900)
    fake.add_charge(amount=100)
    subscription = fake.add_subscription()
    dispute = fake.add_dispute()
    fake.refunds.append({"id": "re_seeded", "object": "refund", "amount": 100, "charge": charge["id"],
                         "payment_intent": None, "currency": "usd", "status": "succeeded"})
    lookups = [
        ("retrieve_balance", {}, None, "GET", "/v1/balance", {}),
        ("retrieve_charge", {"charge_id": charge["id"]}, charge["id"], "GET", f"/v1/charges/{charge['id']}", {}),
        ("list_refunds", {"charge_id": charge["id"], "limit": 5}, None, "GET", "/v1/refunds",
         {"charge": charge["id"], "limit": "5"}),
        ("retrieve_subscription", {"subscription_id": subscription["id"]}, subscription["id"], "GET",
         f"/v1/subscriptions/{subscription['id']}", {}),
        ("retrieve_dispute", {"dispute_id": dispute["id"]}, dispute["id"], "GET", f"/v1/disputes/{dispute['id']}",
         {}),
    ]
    for action, details, object_id, method, path, params in lookups:
        fake.requests.clear()
        response = await submit(api, agent, action, details)

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "approved", action
        assert body["decidedBy"]["type"] == "rule" and body["rule"] == "read-only lookups"
        assert body["approvals"] == []
        assert body["execution"]["status"] == "succeeded" and body["execution"]["error"] is None
        assert body["execution"]["stripeObjectId"] == object_id
        [sent] = fake.requests
        assert (sent.method, sent.path, sent.params) == (method, path, params), action
        if action == "retrieve_balance":
            assert body["execution"]["result"]["object"] == "balance"
        elif action == "list_refunds":
            assert [r["id"] for r in body["execution"]["result"]["data"]] == ["re_seeded"]
        else:
            assert body["execution"]["result"]["id"] == object_id

    async with stripe_container.db.read() as session:
        kinds = (await session.scalars(select(Job.kind))).all()
    assert "stripe.execute" not in kinds and "approval.expire" not in kinds  # nothing to review or run later
    await stripe_container.worker.drain()
    assert [r for r in fake.requests if r.method in WRITES] == []


# -- execute: false ----------------------------------------------------------------------------------


async def test_execute_false_decides_only_and_the_agent_acts_on_modified_details(api, agent, stripe_container,
                                                                                 fake):
    charge = fake.add_charge(amount=34900)
    details = {"charge_id": charge["id"], "amount_cents": 34900, "currency": "usd", "reason": "duplicate",
               "customer_id": charge["customer"]}
    approval_id = await request(api, agent, "issue_refund", details, execute=False)

    body = await approve_and_execute(api, agent, stripe_container, approval_id, edits={"amount_cents": 17450})

    assert body["status"] == "approved" and body["execute"] is False
    assert body["execution"] == {"status": "not_requested", "stripeObjectId": None, "result": None,
                                 "error": None}
    # The whole payload, edited: what the agent acts on (`modifiedDetails ?? details`).
    assert body["modifiedDetails"] == {**details, "amount_cents": 17450}
    assert body["details"] == details
    # The reviewer's edit was checked against the charge (a read); nothing was written.
    assert fake.last("GET", f"/v1/charges/{charge['id']}") and writes(fake) == []
    assert fake.refunds == []
    async with stripe_container.db.read() as session:
        assert "stripe.execute" not in (await session.scalars(select(Job.kind))).all()


async def test_execute_false_without_edits_leaves_modified_details_null(api, agent, stripe_container, fake):
    approval_id = await request(api, agent, "create_payout", {"amount_cents": 900, "currency": "usd"},
                                execute=False)
    body = await approve_and_execute(api, agent, stripe_container, approval_id)
    assert body["status"] == "approved" and body["execution"]["status"] == "not_requested"
    assert body["modifiedDetails"] is None and body["changes"] == {}
    assert writes(fake) == [] and fake.payouts == []


async def test_actions_outside_the_catalogue_are_decided_only(api, agent, stripe_container, fake):
    refused = await submit(api, agent, "send_gift_card", {"amount_cents": 5000}, execute=True)
    assert refused.status_code == 422
    # `execute` defaults to false outside the catalogue: the service decides, the agent acts.
    approval_id = await request(api, agent, "send_gift_card", {"amount_cents": 5000})
    body = await approve_and_execute(api, agent, stripe_container, approval_id)
    assert body["status"] == "approved" and body["execution"]["status"] == "not_requested"
    assert fake.requests == []
