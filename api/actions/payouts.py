"""create_payout → `POST /v1/payouts`."""

from typing import Any, Literal

from pydantic import Field, StrictStr

from api.actions.base import ActionSpec, EditableField, ExecutionOutcome, money_text, without_none
from api.actions.fields import Amount, Currency, DestinationId, Details
from api.execution.gateway import StripeGateway

PAYOUT_METHODS = ("standard", "instant")


class CreatePayoutDetails(Details):
    amount_cents: Amount
    currency: Currency
    method: Literal["standard", "instant"] | None = None
    destination: DestinationId | None = None
    description: StrictStr | None = Field(None, max_length=5000)
    # Stripe's limit: what shows on the bank statement, at most 22 characters.
    statement_descriptor: StrictStr | None = Field(None, max_length=22)


class CreatePayout(ActionSpec):
    name = "create_payout"
    title = "Create payout"
    plural = "Payouts"
    moves_money = True
    stripe_object = "payout"
    family = "payout"
    details_model = CreatePayoutDetails
    totals_group = "payouts"
    editable = (
        # A reviewer may send less money out than the agent asked for, never more.
        EditableField("amount_cents", "Payout amount", "amount", lower_only=True),
        EditableField("method", "Method", "choice", choices=PAYOUT_METHODS),
    )

    def headline(self, details: dict[str, Any]) -> str:
        method = " (instant)" if details.get("method") == "instant" else ""
        return f"Payout {money_text(details.get('amount_cents'), details.get('currency'))}{method}"

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        params = {
            "amount": details.amount_cents,
            "currency": details.currency,
            "method": details.method,
            "destination": details.destination,
            "description": details.description,
            "statement_descriptor": details.statement_descriptor,
        }
        payout = await gateway.create_payout(without_none(params), idempotency_key=idempotency_key)
        return ExecutionOutcome(payout["id"], payout)
