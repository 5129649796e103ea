"""Execution modes over the real wire: read-only actions answered at intake without review, and
execute: false, where a decision is all Cheqpoint does and the agent acts.
"""

from sqlalchemy import select

from api.outbox.models import Job
from tests import execution_helpers as shared
from tests.execution_helpers import WRITES, approve_and_execute, request, submit, writes

# The fixtures of execution_helpers.py: the fake Stripe API, the service configured for it, its API
# client and an agent's credentials.
fake = shared.fake
stripe_container = shared.stripe_container
api = shared.api
agent = shared.agent


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
