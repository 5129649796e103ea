"""The fake's endpoints: Stripe's rules for each operation it serves. Called with the lock held."""

import time
from typing import Any

from tests.fakes.stripe.objects import (
    balance_object,
    invoice_line,
    list_of,
    payout_object,
    price_object,
    refund_object,
    subscription_item,
    upcoming_invoice_object,
)
from tests.fakes.stripe.wire import invalid, new_id


class Endpoints:
    """State lives on the FakeStripe that mixes this in."""

    charges: dict[str, dict[str, Any]]
    payment_intents: dict[str, dict[str, Any]]
    customers: dict[str, dict[str, Any]]
    prices: dict[str, dict[str, Any]]
    subscriptions: dict[str, dict[str, Any]]
    disputes: dict[str, dict[str, Any]]
    refunds: list[dict[str, Any]]
    payouts: list[dict[str, Any]]
    available: dict[str, int]
    pending: dict[str, int]
    account: dict[str, Any]
    livemode: bool

    def _find(self, table: dict[str, dict[str, Any]], object_id: str, kind: str, param: str) -> dict[str, Any]:
        if object_id not in table:
            raise invalid(f"No such {kind}: '{object_id}'", code="resource_missing", param=param, status=404)
        return table[object_id]

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        charge_id, intent_id = params.get("charge"), params.get("payment_intent")
        if (charge_id is None) == (intent_id is None):
            raise invalid("One of the following params should be provided for this request: charge or "
                          "payment_intent.", code="parameter_missing")
        if intent_id is not None:
            intent = self._find(self.payment_intents, intent_id, "payment_intent", "payment_intent")
            charge_id = intent["latest_charge"]
            if charge_id is None:
                raise invalid(f"PaymentIntent {intent_id} does not have a successful charge to refund.",
                              param="payment_intent")
        charge = self._find(self.charges, charge_id, "charge", "charge")
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise invalid(f"Charge {charge_id} has already been refunded.", code="charge_already_refunded")
        amount = int(params.get("amount", remaining))
        if amount <= 0:
            raise invalid("Invalid positive integer", code="parameter_invalid_integer", param="amount")
        if amount > remaining:
            raise invalid(f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                          f"({remaining})", code="amount_too_large", param="amount")
        return self.record_refund(charge, amount, reason=params.get("reason"), metadata=params.get("metadata") or {})

    def record_refund(self, charge: dict[str, Any], amount: int, *, reason: str | None = None,
                      metadata: dict[str, Any] | None = None, created: int | None = None) -> dict[str, Any]:
        refund = refund_object(charge, amount, reason=reason, metadata=metadata or {}, created=created)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        charge["refunds"]["data"].insert(0, refund)
        self.refunds.append(refund)
        return refund

    def _list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        matching = [r for r in reversed(self.refunds)
                    if params.get("charge") in (None, r["charge"])
                    and params.get("payment_intent") in (None, r["payment_intent"])]
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 100:
            raise invalid("Invalid limit: must be between 1 and 100", param="limit", saved=False)
        return list_of(matching[:limit], "/v1/refunds", has_more=len(matching) > limit)

    def _retrieve_refund(self, params: dict[str, Any], refund_id: str) -> dict[str, Any]:
        return self._find({r["id"]: r for r in self.refunds}, refund_id, "refund", "id")

    def _create_payout(self, params: dict[str, Any]) -> dict[str, Any]:
        amount, currency = int(params["amount"]), params["currency"].lower()
        if amount > self.available.get(currency, 0):
            raise invalid("You have insufficient funds in your Stripe account for this transfer.",
                          code="balance_insufficient", param="amount")
        self.available[currency] -= amount
        payout = payout_object(amount, currency, params, self.livemode)
        self.payouts.append(payout)
        return payout

    def _retrieve_balance(self, params: dict[str, Any]) -> dict[str, Any]:
        return balance_object(self.available, self.pending, self.livemode)

    def _retrieve_charge(self, params: dict[str, Any], charge_id: str) -> dict[str, Any]:
        return self._find(self.charges, charge_id, "charge", "id")

    def _retrieve_payment_intent(self, params: dict[str, Any], intent_id: str) -> dict[str, Any]:
        return self._find(self.payment_intents, intent_id, "payment_intent", "intent")

    def _retrieve_subscription(self, params: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        return self._find(self.subscriptions, subscription_id, "subscription", "id")

    def _update_subscription(self, params: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        subscription = self._find(self.subscriptions, subscription_id, "subscription", "id")
        if subscription["status"] == "canceled":
            raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
        items = subscription["items"]["data"]
        for index, change in enumerate(params.get("items", [])):
            self._apply_item_change(subscription, items, index, change)
        if "cancel_at_period_end" in params:
            at_end = params["cancel_at_period_end"] == "true"
            subscription["cancel_at_period_end"] = at_end
            subscription["cancel_at"] = subscription["current_period_end"] if at_end else None
        if "pause_collection" in params:
            pause = params["pause_collection"]
            subscription["pause_collection"] = None if pause == "" else {
                "behavior": pause["behavior"],
                "resumes_at": int(pause["resumes_at"]) if "resumes_at" in pause else None}
        subscription["metadata"].update(params.get("metadata") or {})
        return subscription

    def _apply_item_change(self, subscription: dict[str, Any], items: list[dict[str, Any]], index: int,
                           change: dict[str, Any]) -> None:
        if "id" not in change:
            if "price" not in change:
                raise invalid(f"Missing required param: items[{index}][price].",
                              code="parameter_missing", param=f"items[{index}][price]")
            price = self._price_for(change["price"], subscription["currency"], 2000)
            items.append(subscription_item(subscription["id"], price, int(change.get("quantity", 1))))
            return
        item = next((i for i in items if i["id"] == change["id"]), None)
        if item is None:
            raise invalid(f"No such subscription item: '{change['id']}'", code="resource_missing",
                          param=f"items[{index}][id]")
        if change.get("deleted") == "true":
            items.remove(item)
            return
        if "quantity" in change:
            item["quantity"] = int(change["quantity"])
        if "price" in change:
            item["price"] = self._price_for(change["price"], subscription["currency"],
                                            item["price"]["unit_amount"])

    def _cancel_subscription(self, params: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        subscription = self._find(self.subscriptions, subscription_id, "subscription", "id")
        if subscription["status"] == "canceled":
            raise invalid(f"Subscription {subscription_id} is already canceled.")
        now = int(time.time())
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
        subscription["cancellation_details"]["reason"] = "cancellation_requested"
        return subscription

    def _retrieve_dispute(self, params: dict[str, Any], dispute_id: str) -> dict[str, Any]:
        return self._find(self.disputes, dispute_id, "dispute", "dispute")

    def _open_dispute(self, dispute_id: str) -> dict[str, Any]:
        dispute = self._find(self.disputes, dispute_id, "dispute", "dispute")
        if dispute["status"] in ("won", "lost"):
            raise invalid(f"This dispute is already closed ({dispute['status']}).")
        return dispute

    def _update_dispute(self, params: dict[str, Any], dispute_id: str) -> dict[str, Any]:
        dispute = self._open_dispute(dispute_id)
        dispute["evidence"].update(params.get("evidence") or {})
        dispute["metadata"].update(params.get("metadata") or {})
        details = dispute["evidence_details"]
        details["has_evidence"] = bool(dispute["evidence"])
        if params.get("submit", "true") == "true":  # Stripe submits unless told not to
            dispute["status"] = "under_review"
            details["submission_count"] += 1
        return dispute

    def _close_dispute(self, params: dict[str, Any], dispute_id: str) -> dict[str, Any]:
        dispute = self._open_dispute(dispute_id)
        dispute["status"] = "lost"
        return dispute

    # -- reads verification makes ---------------------------------------------------------------------

    def _retrieve_customer(self, params: dict[str, Any], customer_id: str) -> dict[str, Any]:
        return self._find(self.customers, customer_id, "customer", "id")

    def _list_charges(self, params: dict[str, Any]) -> dict[str, Any]:
        """Newest first; `data.refunds` is always filled in, as if `expand[]=data.refunds` were asked."""
        limit = int(params.get("limit", 10))
        matching = sorted((c for c in self.charges.values() if params.get("customer") in (None, c["customer"])),
                          key=lambda c: c["created"], reverse=True)
        return list_of(matching[:limit], "/v1/charges", has_more=len(matching) > limit)

    def _list_disputes(self, params: dict[str, Any]) -> dict[str, Any]:
        matching = [d for d in self.disputes.values() if params.get("charge") in (None, d["charge"])]
        limit = int(params.get("limit", 10))
        return list_of(matching[:limit], "/v1/disputes", has_more=len(matching) > limit)

    def _retrieve_price(self, params: dict[str, Any], price_id: str) -> dict[str, Any]:
        return self._find(self.prices, price_id, "price", "price")

    def _price_for(self, price_id: str, currency: str, unit_amount: int) -> dict[str, Any]:
        """A price the subscription is moved to: the seeded one, or a monthly price made up for it."""
        if price_id not in self.prices:
            self.prices[price_id] = price_object(price_id, currency, unit_amount, livemode=self.livemode)
        return self.prices[price_id]

    def _retrieve_account(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.account

    def _upcoming_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        """The subscription's next invoice: its items for the next period, plus, with proposed
        `subscription_items`, the proration of the change for the rest of this period (half of it)."""
        subscription = self._find(self.subscriptions, params.get("subscription", ""), "subscription",
                                  "subscription")
        if subscription["status"] in ("canceled", "incomplete_expired") or subscription["cancel_at_period_end"]:
            raise invalid("No upcoming invoices for customer", code="invoice_upcoming_none", status=404)
        start, end = subscription["current_period_end"], subscription["current_period_end"] + 30 * 86400
        current = {item["id"]: (item["price"], item["quantity"]) for item in subscription["items"]["data"]}
        proposed = dict(current)
        for change in params.get("subscription_items", []):
            if change.get("deleted") == "true":
                proposed.pop(change.get("id"), None)
                continue
            key = change.get("id") or new_id("si_")
            price, quantity = proposed.get(key, (None, 1))
            if change.get("price"):
                price = self._price_for(change["price"], subscription["currency"], 2000)
            proposed[key] = (price, int(change.get("quantity", quantity)))
        livemode, currency = subscription["livemode"], subscription["currency"]
        lines = [invoice_line(price["unit_amount"] * quantity, currency, proration=False, price=price,
                              quantity=quantity, start=start, end=end, livemode=livemode)
                 for price, quantity in proposed.values()]
        if params.get("subscription_proration_behavior") != "none" and proposed != current:
            now = int(time.time())
            for key in set(current) | set(proposed):
                old = current.get(key, (None, 0))
                new = proposed.get(key, (old[0], 0))
                delta = ((new[0] or {}).get("unit_amount", 0) * new[1] - (old[0] or {}).get("unit_amount", 0) * old[1])
                if delta:
                    lines.append(invoice_line(delta // 2, currency, proration=True, price=new[0] or old[0],
                                              quantity=new[1] or old[1], start=now, end=start, livemode=livemode))
        return upcoming_invoice_object(subscription, lines)
