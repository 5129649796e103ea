"""cancel_subscription and update_subscription → `/v1/subscriptions/{id}`.

Item quantities are edited per item: the editable field `items.<index>.quantity` stands for one
concrete field per item in the request (`items.0.quantity`, `items.1.quantity`, …), which
`editable_for(details)` lists. The item keeps its `id`, so Stripe changes that item's quantity
rather than adding a new item.
"""

from typing import Any, Literal

from pydantic import Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from api.actions.base import ActionSpec, EditableField, ExecutionOutcome, without_none
from api.actions.fields import Details, Metadata, PriceId, Quantity, SubscriptionId, SubscriptionItemId
from api.execution.gateway import StripeGateway

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")


class CancelSubscriptionDetails(Details):
    subscription_id: SubscriptionId
    at_period_end: StrictBool | None = None
    # prorate and invoice_now shape an immediate cancellation; Stripe has no such parameters for
    # one at the period's end, so they are not sent when at_period_end is true.
    prorate: StrictBool | None = None
    invoice_now: StrictBool | None = None


class CancelSubscription(ActionSpec):
    name = "cancel_subscription"
    title = "Cancel subscription"
    plural = "Cancellations"
    family = "subscription"
    details_model = CancelSubscriptionDetails
    editable = (
        EditableField("at_period_end", "Cancel at the end of the period", "bool"),
        EditableField("prorate", "Prorate", "bool"),
        EditableField("invoice_now", "Invoice now", "bool"),
    )

    def headline(self, details: dict[str, Any]) -> str:
        when = " at period end" if details.get("at_period_end") else ""
        return f"Cancel subscription {details.get('subscription_id', '')}{when}".strip()

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        if details.at_period_end:
            subscription = await gateway.update_subscription(
                details.subscription_id, {"cancel_at_period_end": True}, idempotency_key=idempotency_key)
        else:
            params = without_none({"prorate": details.prorate, "invoice_now": details.invoice_now})
            subscription = await gateway.cancel_subscription(
                details.subscription_id, params, idempotency_key=idempotency_key)
        return ExecutionOutcome(subscription["id"], subscription)

    async def earlier_outcome(self, gateway: StripeGateway, details: dict[str, Any]) -> ExecutionOutcome | None:
        # A second DELETE of a subscription our first one cancelled is refused, and Stripe ignores
        # idempotency keys on DELETE: the cancelled subscription is the earlier attempt's answer.
        # (At the period's end is a POST, which the key replays.)
        checked = self._model(details)
        if checked.at_period_end:
            return None
        subscription = await gateway.retrieve_subscription(checked.subscription_id)
        if subscription.get("status") != "canceled":
            return None
        return ExecutionOutcome(subscription["id"], subscription)


class ItemChange(Details):
    """One entry of Stripe's `items[]`: an existing item by `id`, or a new one by `price`."""

    id: SubscriptionItemId | None = None
    price: PriceId | None = None
    quantity: Quantity | None = None
    deleted: StrictBool | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _names_an_item(self) -> "ItemChange":
        if self.id is None and self.price is None:
            raise PydanticCustomError("item_target", "give the item's id (si_…) or a price for a new item")
        if self.deleted and self.id is None:
            raise PydanticCustomError("item_delete", "deleted needs the id of the item to remove")
        return self


class PauseCollection(Details):
    behavior: Literal["keep_as_draft", "mark_uncollectible", "void"]
    resumes_at: int | None = Field(None, gt=0)  # unix time


class UpdateSubscriptionDetails(Details):
    subscription_id: SubscriptionId
    items: list[ItemChange] | None = None
    proration_behavior: Literal["create_prorations", "none", "always_invoice"] | None = None
    cancel_at_period_end: StrictBool | None = None
    pause_collection: PauseCollection | None = None  # null resumes collection

    @model_validator(mode="after")
    def _changes_something(self) -> "UpdateSubscriptionDetails":
        changes = {"items", "proration_behavior", "cancel_at_period_end", "pause_collection"}
        if not changes & self.model_fields_set:
            raise PydanticCustomError(
                "nothing_to_update",
                "give at least one of items, proration_behavior, cancel_at_period_end, pause_collection")
        if self.items is not None and not self.items:
            raise PydanticCustomError("items_empty", "items, when given, must list at least one item")
        return self


class UpdateSubscription(ActionSpec):
    name = "update_subscription"
    title = "Update subscription"
    plural = "Subscription changes"
    family = "subscription"
    details_model = UpdateSubscriptionDetails
    editable = (
        EditableField("proration_behavior", "Proration", "choice", choices=PRORATION_BEHAVIORS),
        EditableField("items.<index>.quantity", "Item quantity", "quantity"),
    )

    def headline(self, details: dict[str, Any]) -> str:
        return f"Update subscription {details.get('subscription_id', '')}".strip()

    def editable_for(self, details: dict[str, Any]) -> tuple[EditableField, ...]:
        per_item = tuple(
            EditableField(f"items.{index}.quantity", f"Quantity of {item.get('id') or item.get('price')}",
                          "quantity")
            for index, item in enumerate(details.get("items") or [])
            if not item.get("deleted")
        )
        return (self.editable[0], *per_item)

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        params: dict[str, Any] = {
            "proration_behavior": details.proration_behavior,
            "cancel_at_period_end": details.cancel_at_period_end,
        }
        if details.items is not None:
            params["items"] = [item.model_dump(exclude_none=True) for item in details.items]
        if "pause_collection" in details.model_fields_set:
            # Stripe unsets a field given as an empty string: that is how collection resumes.
            pause = details.pause_collection
            params["pause_collection"] = pause.model_dump(exclude_none=True) if pause else ""
        subscription = await gateway.update_subscription(
            details.subscription_id, without_none(params), idempotency_key=idempotency_key)
        return ExecutionOutcome(subscription["id"], subscription)
