"""Every catalogue action through StripeGateway → StripeClient → real HTTP → the fake Stripe API."""

import httpx
import pytest
import stripe

from api.actions import get_action
from api.execution import StripeFinal, StripeGateway, StripeNotConfigured, StripeRetryable
from tests.fakes.stripe import SPEC_PATH, FakeStripe, parse_brackets

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(),
                                reason=f"{SPEC_PATH} is absent: nested parameter checks need Stripe's spec")


@pytest.fixture
def fake():
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def gateway(fake):
    # No SDK retries by default, so each test sees exactly the requests it caused.
    gateway = StripeGateway("sk_test_123", fake.url, max_network_retries=0)
    yield gateway
    await gateway.aclose()


async def execute(gateway, action, details, key="apr_1:execute"):
    spec = get_action(action)
    return await spec.execute(gateway, spec.validate_details(details), idempotency_key=key)


# -- writes ------------------------------------------------------------------------------------------


async def test_issue_refund(fake, gateway):
    charge = fake.add_charge(amount=34900, currency="usd", customer="cus_QaAbCdEfGhIjK")
    outcome = await execute(gateway, "issue_refund", {
        "charge_id": charge["id"], "amount_cents": 17450, "currency": "usd", "reason": "duplicate",
        "customer_id": "cus_QaAbCdEfGhIjK", "metadata": {"order": "42"}})
    sent = fake.last("POST", "/v1/refunds")
    # customer_id is context for reviewers; Stripe's `customer` would mean a customer-balance refund.
    assert sent.params == {"charge": charge["id"], "amount": "17450", "reason": "duplicate",
                           "metadata": {"order": "42"}}
    assert sent.idempotency_key == "apr_1:execute"
    assert [r["id"] for r in fake.refunds] == [outcome.stripe_object_id]
    assert outcome.result["amount"] == 17450 and outcome.result["object"] == "refund"
    assert fake.charges[charge["id"]]["amount_refunded"] == 17450


async def test_whole_refund_by_payment_intent(fake, gateway):
    intent = fake.add_payment_intent(amount=5000, currency="eur")
    outcome = await execute(gateway, "issue_refund", {"payment_intent_id": intent["id"]})
    assert fake.last("POST", "/v1/refunds").params == {"payment_intent": intent["id"]}
    assert outcome.result["amount"] == 5000 and outcome.result["currency"] == "eur"


async def test_refunds_beyond_what_is_left_are_refused(fake, gateway):
    charge = fake.add_charge(amount=34900, amount_refunded=30000)
    with pytest.raises(StripeFinal) as caught:
        await execute(gateway, "issue_refund", {"charge_id": charge["id"], "amount_cents": 5000})
    assert (caught.value.type, caught.value.code, caught.value.param) == \
        ("invalid_request_error", "amount_too_large", "amount")
    await execute(gateway, "issue_refund", {"charge_id": charge["id"]}, key="k2")
    with pytest.raises(StripeFinal) as caught:
        await execute(gateway, "issue_refund", {"charge_id": charge["id"]}, key="k3")
    assert caught.value.code == "charge_already_refunded"
    assert [r["amount"] for r in fake.refunds] == [4900]


async def test_refundable_amount(fake, gateway):
    charge = fake.add_charge(amount=34900, currency="usd")
    await execute(gateway, "issue_refund", {"charge_id": charge["id"], "amount_cents": 10000})
    assert await gateway.refundable_amount(charge_id=charge["id"]) == (24900, "usd")
    intent = fake.add_payment_intent(amount=5000, currency="jpy")
    assert await gateway.refundable_amount(payment_intent_id=intent["id"]) == (5000, "jpy")
    unpaid = fake.add_payment_intent(amount=700, currency="gbp", charged=False)
    assert await gateway.refundable_amount(payment_intent_id=unpaid["id"]) == (0, "gbp")
    uncaptured = fake.add_charge(amount=900, captured=False)
    assert await gateway.refundable_amount(charge_id=uncaptured["id"]) == (0, "usd")
    with pytest.raises(ValueError):
        await gateway.refundable_amount()
    with pytest.raises(StripeFinal) as caught:
        await gateway.refundable_amount(charge_id="ch_missing")
    assert caught.value.code == "resource_missing"


async def test_create_payout(fake, gateway):
    fake.set_balance("usd", 600000)
    outcome = await execute(gateway, "create_payout", {
        "amount_cents": 250000, "currency": "USD", "method": "instant", "destination": "ba_1",
        "description": "weekly", "statement_descriptor": "ACME PAYOUT"})
    assert fake.last("POST", "/v1/payouts").params == {
        "amount": "250000", "currency": "usd", "method": "instant", "destination": "ba_1",
        "description": "weekly", "statement_descriptor": "ACME PAYOUT"}
    assert outcome.stripe_object_id == fake.payouts[0]["id"] and outcome.stripe_object_id.startswith("po_")
    assert fake.available["usd"] == 350000
    with pytest.raises(StripeFinal) as caught:
        await execute(gateway, "create_payout", {"amount_cents": 350001, "currency": "usd"}, key="k2")
    assert caught.value.code == "balance_insufficient"


async def test_cancel_subscription_now(fake, gateway):
    subscription = fake.add_subscription()
    outcome = await execute(gateway, "cancel_subscription", {
        "subscription_id": subscription["id"], "prorate": True, "invoice_now": False})
    sent = fake.last("DELETE", f"/v1/subscriptions/{subscription['id']}")
    assert sent.params == {"prorate": "true", "invoice_now": "false"}
    assert outcome.stripe_object_id == subscription["id"] and outcome.result["status"] == "canceled"


async def test_cancel_subscription_at_period_end(fake, gateway):
    subscription = fake.add_subscription()
    outcome = await execute(gateway, "cancel_subscription", {
        "subscription_id": subscription["id"], "at_period_end": True, "prorate": False})
    assert fake.last("POST", f"/v1/subscriptions/{subscription['id']}").params == {"cancel_at_period_end": "true"}
    assert not fake.requests_to("DELETE", f"/v1/subscriptions/{subscription['id']}")
    assert outcome.result["status"] == "active" and outcome.result["cancel_at_period_end"] is True


async def test_update_subscription_with_a_reviewers_quantity(fake, gateway):
    subscription = fake.add_subscription(items=({"quantity": 2}, {"quantity": 1}))
    first, second = (item["id"] for item in subscription["items"]["data"])
    spec = get_action("update_subscription")
    details = {"subscription_id": subscription["id"], "items": [{"id": first, "quantity": 10}],
               "proration_behavior": "create_prorations"}
    modified, _ = spec.apply_edits(details, {"items.0.quantity": 5, "proration_behavior": "none"})
    outcome = await spec.execute(gateway, modified, idempotency_key="apr_2:execute")
    assert fake.last("POST", f"/v1/subscriptions/{subscription['id']}").params == {
        "items": [{"id": first, "quantity": "5"}], "proration_behavior": "none"}
    quantities = {item["id"]: item["quantity"] for item in outcome.result["items"]["data"]}
    assert quantities == {first: 5, second: 1}


async def test_update_subscription_pauses_and_resumes_collection(fake, gateway):
    subscription = fake.add_subscription()
    path = f"/v1/subscriptions/{subscription['id']}"
    await execute(gateway, "update_subscription", {
        "subscription_id": subscription["id"], "pause_collection": {"behavior": "void"}}, key="k1")
    assert fake.last("POST", path).params == {"pause_collection": {"behavior": "void"}}
    assert fake.subscriptions[subscription["id"]]["pause_collection"]["behavior"] == "void"
    await execute(gateway, "update_subscription", {
        "subscription_id": subscription["id"], "pause_collection": None, "cancel_at_period_end": False}, key="k2")
    assert fake.last("POST", path).params == {"pause_collection": "", "cancel_at_period_end": "false"}
    assert fake.subscriptions[subscription["id"]]["pause_collection"] is None


async def test_close_dispute(fake, gateway):
    dispute = fake.add_dispute(amount=4200)
    outcome = await execute(gateway, "close_dispute", {"dispute_id": dispute["id"]})
    sent = fake.last("POST", f"/v1/disputes/{dispute['id']}/close")
    assert sent.params == {} and sent.idempotency_key == "apr_1:execute"
    assert outcome.result["status"] == "lost"


async def test_submit_dispute_evidence(fake, gateway):
    dispute = fake.add_dispute()
    evidence = {"customer_name": "Jenny Rosen", "uncategorized_text": "Signed delivery receipt attached."}
    outcome = await execute(gateway, "submit_dispute_evidence", {
        "dispute_id": dispute["id"], "evidence": evidence, "submit": False})
    assert fake.last("POST", f"/v1/disputes/{dispute['id']}").params == {"evidence": evidence, "submit": "false"}
    assert outcome.result["status"] == "needs_response"  # staged, not submitted
    assert outcome.result["evidence_details"]["has_evidence"] is True
    outcome = await execute(gateway, "submit_dispute_evidence", {
        "dispute_id": dispute["id"], "evidence": {"receipt": "file_1"}}, key="k2")
    assert outcome.result["status"] == "under_review"


# -- reads -------------------------------------------------------------------------------------------


async def test_read_only_actions(fake, gateway):
    charge = fake.add_charge(amount=1200)
    await execute(gateway, "issue_refund", {"charge_id": charge["id"], "amount_cents": 200}, key="r1")
    await execute(gateway, "issue_refund", {"charge_id": charge["id"], "amount_cents": 300}, key="r2")
    subscription, dispute = fake.add_subscription(), fake.add_dispute()

    balance = await execute(gateway, "retrieve_balance", {}, key="ignored")
    assert balance.stripe_object_id is None and balance.result["available"][0]["currency"] == "usd"
    assert (await execute(gateway, "retrieve_charge", {"charge_id": charge["id"]})).result["amount_refunded"] == 500
    page = await execute(gateway, "list_refunds", {"charge_id": charge["id"], "limit": 1})
    assert fake.last("GET", "/v1/refunds").params == {"charge": charge["id"], "limit": "1"}
    assert [r["amount"] for r in page.result["data"]] == [300] and page.result["has_more"] is True
    assert page.stripe_object_id is None
    assert (await execute(gateway, "retrieve_subscription", {"subscription_id": subscription["id"]})
            ).stripe_object_id == subscription["id"]
    assert (await execute(gateway, "retrieve_dispute", {"dispute_id": dispute["id"]})).result["amount"] == 1000
    assert all(r.idempotency_key is None for r in fake.requests if r.method == "GET")


# -- idempotency -------------------------------------------------------------------------------------


async def test_the_same_key_twice_refunds_once(fake, gateway):
    charge = fake.add_charge(amount=34900)
    details = {"charge_id": charge["id"], "amount_cents": 17450}
    first = await execute(gateway, "issue_refund", details)
    second = await execute(gateway, "issue_refund", details)
    assert first == second
    assert len(fake.refunds) == 1
    assert [r.replayed for r in fake.requests_to("POST", "/v1/refunds")] == [False, True]


async def test_the_same_key_with_other_details_is_refused(fake, gateway):
    charge = fake.add_charge(amount=34900)
    await execute(gateway, "issue_refund", {"charge_id": charge["id"], "amount_cents": 17450})
    with pytest.raises(StripeFinal) as caught:
        await execute(gateway, "issue_refund", {"charge_id": charge["id"], "amount_cents": 100})
    assert caught.value.type == "idempotency_error"
    assert len(fake.refunds) == 1


async def test_a_lost_answer_is_recovered_by_retrying_with_the_same_key(fake):
    charge = fake.add_charge(amount=34900)
    impatient = StripeGateway("sk_test_123", fake.url, timeout=0.3, max_network_retries=0)
    fake.delay_next(1.5)  # Stripe refunds, but the answer comes too late
    with pytest.raises(StripeRetryable, match="could not reach Stripe"):
        await execute(impatient, "issue_refund", {"charge_id": charge["id"], "amount_cents": 17450})
    assert len(fake.refunds) == 1
    outcome = await execute(impatient, "issue_refund", {"charge_id": charge["id"], "amount_cents": 17450})
    assert outcome.stripe_object_id == fake.refunds[0]["id"]
    assert len(fake.refunds) == 1 and fake.requests[-1].replayed
    await impatient.aclose()


async def test_the_sdk_retries_a_500_under_the_same_key(fake):
    charge = fake.add_charge(amount=34900)
    patient = StripeGateway("sk_test_123", fake.url)  # the production default: two retries
    fake.fail_next(1, status=500)
    outcome = await execute(patient, "issue_refund", {"charge_id": charge["id"]})
    attempts = fake.requests_to("POST", "/v1/refunds")
    assert [a.status for a in attempts] == [500, 200]
    assert {a.idempotency_key for a in attempts} == {"apr_1:execute"}
    assert [r["id"] for r in fake.refunds] == [outcome.stripe_object_id]
    await patient.aclose()


# -- error translation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(500, None), (503, None), (429, "rate_limit"),
                                              (429, "lock_timeout"), (409, "lock_timeout")])
async def test_transient_failures_are_retryable(fake, gateway, status, code):
    charge = fake.add_charge()
    fake.fail_next(1, status=status, code=code)
    with pytest.raises(StripeRetryable) as caught:
        await execute(gateway, "issue_refund", {"charge_id": charge["id"]})
    assert caught.value.http_status == status and caught.value.code == code
    assert not fake.refunds


async def test_a_card_error_is_final_with_its_code(fake, gateway):
    charge = fake.add_charge()
    fake.card_error_next("card_declined", decline_code="insufficient_funds")
    with pytest.raises(StripeFinal) as caught:
        await execute(gateway, "issue_refund", {"charge_id": charge["id"]})
    error = caught.value
    assert (error.type, error.code, error.decline_code, error.http_status) == \
        ("card_error", "card_declined", "insufficient_funds", 402)
    assert error.as_error() == {"type": "card_error", "code": "card_declined",
                                "message": "Your card was declined."}


async def test_permission_and_authentication_errors_are_final():
    strict = FakeStripe(api_keys={"sk_test_right"})
    with strict:
        wrong = StripeGateway("sk_test_wrong", strict.url, max_network_retries=0)
        with pytest.raises(StripeFinal) as caught:
            await wrong.retrieve_balance()
        assert caught.value.type == "authentication_error"
        assert "Invalid API Key" in caught.value.message
        await wrong.aclose()
        restricted = StripeGateway("sk_test_right", strict.url, max_network_retries=0)
        strict.fail_next(1, status=403, message="This key does not have access to refunds.")
        with pytest.raises(StripeFinal) as caught:
            await restricted.create_refund({"charge": "ch_1"}, idempotency_key="k")
        assert caught.value.type == "permission_error"
        await restricted.aclose()


async def test_unknown_parameters_are_refused_by_the_fake_as_by_stripe(fake, gateway):
    charge = fake.add_charge()
    raw = stripe.StripeClient("sk_test_123", base_addresses={"api": fake.url},
                              http_client=stripe.HTTPXClient())
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await raw.v1.refunds.create_async(params={"charge": charge["id"], "amount_cents": 100})
    assert (caught.value.code, caught.value.param, caught.value.http_status) == \
        ("parameter_unknown", "amount_cents", 400)
    assert caught.value.user_message == "Received unknown parameter: amount_cents"
    with pytest.raises(StripeFinal) as translated:
        await gateway.create_refund({"charge": charge["id"], "customer_id": "cus_1"}, idempotency_key="k")
    assert (translated.value.type, translated.value.code) == ("invalid_request_error", "parameter_unknown")
    assert not fake.refunds


@needs_spec
async def test_nested_and_typed_parameters_are_checked_against_the_spec(fake, gateway):
    subscription, dispute = fake.add_subscription(), fake.add_dispute()
    item = subscription["items"]["data"][0]["id"]

    async def refused(call):
        with pytest.raises(StripeFinal) as caught:
            await call
        return caught.value

    error = await refused(gateway.update_subscription(
        subscription["id"], {"items": [{"id": item, "qty": 3}]}, idempotency_key="k1"))
    assert (error.code, error.param) == ("parameter_unknown", "items[0][qty]")
    error = await refused(gateway.update_dispute(dispute["id"], {"evidence": {"story": "x"}}, idempotency_key="k2"))
    assert error.param == "evidence[story]"
    error = await refused(gateway.create_payout({"amount": 100}, idempotency_key="k3"))
    assert (error.code, error.param) == ("parameter_missing", "currency")
    error = await refused(gateway.create_refund({"charge": "ch_1", "amount": "ten"}, idempotency_key="k4"))
    assert error.code == "parameter_invalid_integer"
    error = await refused(gateway.create_refund({"charge": "ch_1", "reason": "bored"}, idempotency_key="k5"))
    assert error.param == "reason"
    error = await refused(gateway.update_subscription(
        subscription["id"], {"pause_collection": {"resumes_at": 1}}, idempotency_key="k6"))
    assert (error.code, error.param) == ("parameter_missing", "pause_collection[behavior]")


async def test_without_the_spec_top_level_names_are_still_checked():
    with FakeStripe(spec_path=None) as bare:
        gateway = StripeGateway("sk_test_123", bare.url, max_network_retries=0)
        with pytest.raises(StripeFinal) as caught:
            await gateway.create_payout({"amount": 1, "currency": "usd", "speed": "fast"}, idempotency_key="k")
        assert caught.value.code == "parameter_unknown"
        await gateway.aclose()


async def test_the_fake_wants_a_key_and_a_known_url(fake):
    async with httpx.AsyncClient(base_url=fake.url) as client:
        anonymous = await client.get("/v1/balance")
        assert anonymous.status_code == 401
        assert "did not provide an API key" in anonymous.json()["error"]["message"]
        unknown = await client.get("/v1/wires", headers={"Authorization": "Bearer sk_test_1"})
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"


def test_bracket_notation():
    pairs = [("items[0][id]", "si_1"), ("items[0][quantity]", "2"), ("items[1][price]", "p"),
             ("metadata[order]", "42"), ("expand[]", "a"), ("expand[]", "b"), ("pause_collection", "")]
    assert parse_brackets(pairs) == {"items": [{"id": "si_1", "quantity": "2"}, {"price": "p"}],
                                     "metadata": {"order": "42"}, "expand": ["a", "b"], "pause_collection": ""}


# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, ""])
async def test_without_a_key_every_call_fails_clearly(key):
    gateway = StripeGateway(key)
    assert not gateway.configured and not gateway.test_mode
    calls = [gateway.retrieve_balance(), gateway.create_refund({}, idempotency_key="k"),
             gateway.refundable_amount(charge_id="ch_1"),
             execute(gateway, "close_dispute", {"dispute_id": "dp_1"})]
    for call in calls:
        with pytest.raises(StripeNotConfigured, match="STRIPE_SECRET_KEY is not set") as caught:
            await call
        assert isinstance(caught.value, StripeFinal)
        assert caught.value.as_error()["code"] == "stripe_not_configured"
    await gateway.aclose()


@pytest.mark.parametrize(("key", "test_mode"), [("sk_test_1", True), ("rk_test_1", True),
                                                ("sk_live_1", False), ("rk_live_1", False)])
async def test_test_mode_follows_the_key(key, test_mode):
    gateway = StripeGateway(key)
    assert gateway.configured and gateway.test_mode is test_mode
    await gateway.aclose()
