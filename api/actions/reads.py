"""The read-only actions: pass through without review, ignore idempotency keys."""

from typing import Annotated, Any

from pydantic import Field, StrictInt

from api.actions.base import ActionSpec, ExecutionOutcome, without_none
from api.actions.fields import ChargeId, Details, DisputeId, PaymentIntentId, SubscriptionId
from api.execution.gateway import StripeGateway


class ReadAction(ActionSpec):
    read_only = True


class RetrieveBalanceDetails(Details):
    pass


class RetrieveBalance(ReadAction):
    name = "retrieve_balance"
    title = "Retrieve balance"
    details_model = RetrieveBalanceDetails

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        return ExecutionOutcome(None, await gateway.retrieve_balance())


class RetrieveChargeDetails(Details):
    charge_id: ChargeId


class RetrieveCharge(ReadAction):
    name = "retrieve_charge"
    title = "Retrieve charge"
    details_model = RetrieveChargeDetails

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        charge = await gateway.retrieve_charge(details.charge_id)
        return ExecutionOutcome(charge["id"], charge)


class ListRefundsDetails(Details):
    charge_id: ChargeId | None = None
    payment_intent_id: PaymentIntentId | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=100)] | None = None  # Stripe's page size bounds


class ListRefunds(ReadAction):
    name = "list_refunds"
    title = "List refunds"
    details_model = ListRefundsDetails

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        page = await gateway.list_refunds(without_none({
            "charge": details.charge_id,
            "payment_intent": details.payment_intent_id,
            "limit": details.limit,
        }))
        return ExecutionOutcome(None, page)


class RetrieveSubscriptionDetails(Details):
    subscription_id: SubscriptionId


class RetrieveSubscription(ReadAction):
    name = "retrieve_subscription"
    title = "Retrieve subscription"
    details_model = RetrieveSubscriptionDetails

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        subscription = await gateway.retrieve_subscription(details.subscription_id)
        return ExecutionOutcome(subscription["id"], subscription)


class RetrieveDisputeDetails(Details):
    dispute_id: DisputeId


class RetrieveDispute(ReadAction):
    name = "retrieve_dispute"
    title = "Retrieve dispute"
    details_model = RetrieveDisputeDetails

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        dispute = await gateway.retrieve_dispute(details.dispute_id)
        return ExecutionOutcome(dispute["id"], dispute)
