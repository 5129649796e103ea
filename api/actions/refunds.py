"""issue_refund → `POST /v1/refunds`."""

from typing import Any, Literal

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from api.actions.base import ActionSpec, EditableField, EditRejected, ExecutionOutcome, money_text, without_none
from api.actions.fields import Amount, ChargeId, Currency, CustomerId, Details, Metadata, PaymentIntentId
from api.errors import UpstreamUnavailable
from api.execution.gateway import StripeGateway, StripeGatewayError
from api.money import format_money

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
    plural = "Refunds"
    moves_money = True
    stripe_object = "refund"
    family = "refund"
    details_model = IssueRefundDetails
    totals_group = "refunds"
    totals_per_customer = True  # one Stripe account serves every Connection: a customer's refunds add up
    # "Never above what is still refundable" needs Stripe: see check_edits.
    editable = (
        EditableField("amount_cents", "Refund amount", "amount", when_empty="a full refund"),
        EditableField("reason", "Reason", "choice", choices=REFUND_REASONS),
    )

    def headline(self, details: dict[str, Any]) -> str:
        amount = details.get("amount_cents")
        return f"Refund {money_text(amount, details.get('currency'))}" if amount is not None else "Full refund"

    async def check_edits(self, gateway: StripeGateway, details: dict[str, Any], edits: dict[str, Any]) -> None:
        """A reviewer may raise a refund, but never above what Stripe can still refund."""
        amount = edits.get("amount_cents")
        if not isinstance(amount, int):
            return  # not an amount edit, or not a number: the edit's own validation answers
        refundable, currency = await self._refundable(gateway, details)
        if amount > refundable:
            raise EditRejected("amount_cents", f"only {format_money(refundable, currency)} can still be refunded")

    async def stripe_currency(self, gateway: StripeGateway, details: dict[str, Any]) -> str | None:
        _, currency = await self._refundable(gateway, details)
        return str(currency).lower()

    async def _refundable(self, gateway: StripeGateway, details: dict[str, Any]) -> tuple[int, str]:
        try:
            return await gateway.refundable_amount(details.get("charge_id"), details.get("payment_intent_id"))
        except StripeGatewayError as exc:
            raise UpstreamUnavailable(f"could not ask Stripe what is refundable: {exc.message}") from exc

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
