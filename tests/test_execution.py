"""Execution of the money-moving catalogue actions over the real wire:
POST /v1/approvals → decision → worker → StripeGateway → StripeClient → HTTP → the fake Stripe API.

Read-only actions and execute: false are in test_execution_modes.py; faults, crashes and races in
test_execution_faults.py and test_execution_stripe_errors.py.
"""

import pytest

from api.actions import EditRejected
from api.execution.job import idempotency_key
from tests import execution_helpers as shared
from tests.execution_helpers import OPS, WRITES, approve_and_execute, only_write, request, succeeded, writes

# The fixtures of execution_helpers.py: the fake Stripe API, the service configured for it, its API
# client and an agent's credentials.
fake = shared.fake
stripe_container = shared.stripe_container
api = shared.api
agent = shared.agent


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
