"""issue_refund → `POST /v1/refunds`."""

from typing import Any, Literal

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from api.actions.base import ActionSpec, EditableField, ExecutionOutcome, without_none
from api.actions.fields import Amount, ChargeId, Currency, CustomerId, Details, Metadata, PaymentIntentId
from api.execution.gateway import StripeGateway

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class IssueRefundDetails(Details):
    charge_id: ChargeId | None = None
    payment_intent_id: PaymentIntentId | None = None
    amount_cents: Amount | None = None  # absent: refund whatever is still refundable
    currency: Currency | None = None  # for showing the amount; Stripe takes the charge's own
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    customer_id: CustomerId | None = None  # context for reviewers; not sent (see IssueRefund.run)
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _one_payment(self) -> "IssueRefundDetails":
        if (self.charge_id is None) == (self.payment_intent_id is None):
            raise PydanticCustomError("refund_target", "give exactly one of charge_id or payment_intent_id")
        return self


class IssueRefund(ActionSpec):
    name = "issue_refund"
    title = "Issue refund"
    details_model = IssueRefundDetails
    totals_group = "refunds"
    totals_per_customer = True  # one Stripe account serves every Connection: a customer's refunds add up
    # "Never above what is still refundable" needs Stripe: StripeGateway.refundable_amount().
    editable = (
        EditableField("amount_cents", "Refund amount", "amount"),
        EditableField("reason", "Reason", "choice", choices=REFUND_REASONS),
    )

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        # customer_id is not sent: Stripe's `customer` parameter means "refund from the customer
        # balance", a different operation; the charge or payment intent already names the customer.
        params = {
            "charge": details.charge_id,
            "payment_intent": details.payment_intent_id,
            "amount": details.amount_cents,
            "reason": details.reason,
            "metadata": details.metadata,
        }
        refund = await gateway.create_refund(without_none(params), idempotency_key=idempotency_key)
        return ExecutionOutcome(refund["id"], refund)
