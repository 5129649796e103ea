"""Objects shaped like Stripe's (API 2023-08-16; see shared/vendor/stripe/fixtures3.json), each one
checked against the spec's schema by tests/test_stripe_facts_fake.py."""

import time
from typing import Any

from tests.fakes.stripe.wire import new_id

DAY = 86400


def list_of(data: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def charge_object(amount: int, currency: str, *, customer: str | None, captured: bool,
                  payment_intent: str | None, livemode: bool, created: int | None = None,
                  card: dict[str, Any] | None = None, risk_level: str = "normal") -> dict[str, Any]:
    charge_id = new_id("ch_")
    card = {"brand": "visa", "last4": "4242", "country": "US", **(card or {})}
    return {
        "id": charge_id, "object": "charge", "amount": amount,
        "amount_captured": amount if captured else 0, "amount_refunded": 0,
        "balance_transaction": new_id("txn_"),
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "captured": captured, "created": created or int(time.time()),
        "currency": currency, "customer": customer, "description": None, "disputed": False,
        "livemode": livemode, "metadata": {},
        "outcome": {"network_status": "approved_by_network", "reason": None, "risk_level": risk_level,
                    "seller_message": "Payment complete.", "type": "authorized"},
        "paid": True, "payment_intent": payment_intent, "payment_method": new_id("pm_"), "refunded": False,
        "payment_method_details": {"type": "card", "card": {**card, "exp_month": 8, "exp_year": 2030}},
        "refunds": list_of([], f"/v1/charges/{charge_id}/refunds"), "status": "succeeded",
    }


def refund_object(charge: dict[str, Any], amount: int, *, reason: str | None, metadata: dict[str, Any],
                  created: int | None = None) -> dict[str, Any]:
    return {
        "id": new_id("re_"), "object": "refund", "amount": amount, "balance_transaction": new_id("txn_"),
        "charge": charge["id"], "created": created or int(time.time()), "currency": charge["currency"],
        "metadata": metadata, "payment_intent": charge["payment_intent"], "reason": reason,
        "receipt_number": None, "status": "succeeded",
    }


def customer_object(name: str | None, email: str | None, livemode: bool) -> dict[str, Any]:
    return {"id": new_id("cus_"), "object": "customer", "created": int(time.time()), "email": email,
            "livemode": livemode, "metadata": {}, "name": name}


def price_object(price_id: str, currency: str, unit_amount: int, *, livemode: bool = False,
                 active: bool = True, product: str | None = None) -> dict[str, Any]:
    return {"id": price_id, "object": "price", "active": active, "billing_scheme": "per_unit",
            "created": int(time.time()), "currency": currency, "livemode": livemode, "metadata": {},
            "product": product or new_id("prod_"),
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring", "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount)}


def subscription_item(subscription_id: str, price: dict[str, Any], quantity: int) -> dict[str, Any]:
    return {"id": new_id("si_"), "object": "subscription_item", "created": int(time.time()), "metadata": {},
            "price": price, "quantity": quantity, "subscription": subscription_id, "tax_rates": []}


def subscription_object(customer: str, items: list[dict[str, Any]], currency: str,
                        status: str, livemode: bool) -> dict[str, Any]:
    subscription_id = new_id("sub_")
    now = int(time.time())
    data = [subscription_item(subscription_id, price_object(item.get("price") or new_id("price_"), currency,
                                                            item.get("unit_amount", 2000), livemode=livemode),
                              item.get("quantity", 1)) for item in items]
    return {
        "id": subscription_id, "object": "subscription", "automatic_tax": {"enabled": False},
        "billing_cycle_anchor": now, "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically", "created": now, "currency": currency,
        "current_period_end": now + 30 * DAY, "current_period_start": now, "customer": customer,
        "ended_at": None, "items": list_of(data, f"/v1/subscription_items?subscription={subscription_id}"),
        "latest_invoice": None, "livemode": livemode, "metadata": {}, "pause_collection": None,
        "start_date": now, "status": status,
    }


def invoice_line(amount: int, currency: str, *, proration: bool, price: dict[str, Any], quantity: int,
                 start: int, end: int, livemode: bool) -> dict[str, Any]:
    return {"id": new_id("il_"), "object": "line_item", "amount": amount, "currency": currency,
            "description": None, "discountable": True, "livemode": livemode, "metadata": {},
            "period": {"start": start, "end": end}, "price": price, "proration": proration,
            "quantity": quantity, "type": "subscription"}


def upcoming_invoice_object(subscription: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    """`GET /v1/invoices/upcoming`: an invoice without an id, due at the end of the period."""
    total = sum(line["amount"] for line in lines)
    start, end = subscription["current_period_start"], subscription["current_period_end"]
    return {
        "object": "invoice", "amount_due": max(total, 0), "amount_paid": 0, "amount_remaining": max(total, 0),
        "amount_shipping": 0, "attempt_count": 0, "attempted": False,
        "automatic_tax": {"enabled": False, "status": None}, "collection_method": "charge_automatically",
        "created": int(time.time()), "currency": subscription["currency"], "customer": subscription["customer"],
        "default_tax_rates": [], "lines": list_of(lines, "/v1/invoices/upcoming/lines"),
        "livemode": subscription["livemode"], "next_payment_attempt": end, "paid": False,
        "paid_out_of_band": False, "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                                        "payment_method_types": None},
        "period_end": end, "period_start": start, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "starting_balance": 0,
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "subscription": subscription["id"], "subtotal": total, "total": total, "total_tax_amounts": [],
    }


def dispute_object(charge: str, amount: int, currency: str, reason: str, status: str,
                   livemode: bool, due_in_days: float = 7) -> dict[str, Any]:
    return {
        "id": new_id("dp_"), "object": "dispute", "amount": amount, "balance_transactions": [],
        "charge": charge, "created": int(time.time()), "currency": currency, "evidence": {},
        "evidence_details": {"due_by": int(time.time() + due_in_days * DAY), "has_evidence": False,
                             "past_due": False, "submission_count": 0},
        "is_charge_refundable": False, "livemode": livemode, "metadata": {}, "payment_intent": None,
        "reason": reason, "status": status,
    }


def bank_account_object(currency: str, *, bank_name: str, last4: str, default: bool) -> dict[str, Any]:
    return {"id": new_id("ba_"), "object": "bank_account", "account_holder_name": None,
            "bank_name": bank_name, "country": "US", "currency": currency, "default_for_currency": default,
            "last4": last4, "metadata": {}, "routing_number": "110000000", "status": "new"}


def account_object(account_id: str, external: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": account_id, "object": "account", "country": "US", "default_currency": "usd",
            "external_accounts": list_of(external, f"/v1/accounts/{account_id}/external_accounts"),
            "payouts_enabled": True, "type": "standard"}


def balance_object(available: dict[str, int], pending: dict[str, int], livemode: bool) -> dict[str, Any]:
    def amounts(table: dict[str, int]) -> list[dict[str, Any]]:
        return [{"amount": amount, "currency": currency, "source_types": {"card": amount}}
                for currency, amount in table.items()]

    return {"object": "balance", "available": amounts(available),
            "pending": amounts({currency: pending.get(currency, 0) for currency in {**available, **pending}}),
            "livemode": livemode}


def payout_object(amount: int, currency: str, params: dict[str, Any], livemode: bool) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": new_id("po_"), "object": "payout", "amount": amount, "arrival_date": now + DAY,
        "automatic": False, "balance_transaction": new_id("txn_"), "created": now,
        "currency": currency, "description": params.get("description"),
        "destination": params.get("destination") or new_id("ba_"), "livemode": livemode,
        "metadata": params.get("metadata") or {}, "method": params.get("method", "standard"),
        "reconciliation_status": "not_applicable", "source_type": params.get("source_type", "card"),
        "statement_descriptor": params.get("statement_descriptor"), "status": "pending",
        "type": "bank_account",
    }
