"""Seeding the fake with the objects a test needs. Every method takes the lock: the server runs in
its own thread."""

import threading
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.stripe.objects import (
    DAY,
    bank_account_object,
    charge_object,
    customer_object,
    dispute_object,
    price_object,
    subscription_object,
)
from tests.fakes.stripe.wire import new_id

DEFAULT_CUSTOMER = "cus_QaAbCdEfGhIjK"


class Seeding:
    charges: dict[str, dict[str, Any]]
    payment_intents: dict[str, dict[str, Any]]
    customers: dict[str, dict[str, Any]]
    prices: dict[str, dict[str, Any]]
    subscriptions: dict[str, dict[str, Any]]
    disputes: dict[str, dict[str, Any]]
    available: dict[str, int]
    pending: dict[str, int]
    account: dict[str, Any]
    livemode: bool
    _lock: threading.RLock
    record_refund: Callable[..., dict[str, Any]]  # Endpoints' own, which keeps the charge in step

    def add_customer(self, *, name: str | None = "Jane Doe", email: str | None = "jane@example.com",
                     customer_id: str | None = None, livemode: bool | None = None) -> dict[str, Any]:
        with self._lock:
            customer = customer_object(name, email, self.livemode if livemode is None else livemode)
            if customer_id is not None:
                customer["id"] = customer_id
            self.customers[customer["id"]] = customer
            return customer

    def add_charge(self, amount: int = 34900, currency: str = "usd", *, customer: str | None = DEFAULT_CUSTOMER,
                   captured: bool = True, amount_refunded: int = 0, payment_intent: str | None = None,
                   age_days: float = 0, card: dict[str, Any] | None = None, risk_level: str = "normal",
                   disputed: bool = False, livemode: bool | None = None) -> dict[str, Any]:
        """A succeeded charge, by default of the customer the tests' requests name (tests/conftest.py's
        REFUND); a customer id not seeded yet becomes a customer without name or email."""
        with self._lock:
            if customer is not None and customer not in self.customers:
                self.add_customer(name=None, email=None, customer_id=customer)
            charge = charge_object(amount, currency, customer=customer, captured=captured,
                                   payment_intent=payment_intent,
                                   livemode=self.livemode if livemode is None else livemode,
                                   created=int(time.time() - age_days * DAY), card=card, risk_level=risk_level)
            charge["amount_refunded"] = amount_refunded
            charge["refunded"] = captured and amount_refunded >= amount
            charge["disputed"] = disputed
            self.charges[charge["id"]] = charge
            return charge

    def add_refund(self, charge_id: str, amount: int, *, age_days: float = 0) -> dict[str, Any]:
        """A refund made earlier (outside our service), `age_days` ago."""
        with self._lock:
            return self.record_refund(self.charges[charge_id], amount, created=int(time.time() - age_days * DAY))

    def add_payment_intent(self, amount: int = 34900, currency: str = "usd", *,
                           customer: str | None = None, charged: bool = True) -> dict[str, Any]:
        """A payment intent and, when `charged`, its succeeded latest charge."""
        with self._lock:
            intent_id = new_id("pi_")
            latest = self.add_charge(amount, currency, customer=customer, payment_intent=intent_id)["id"] \
                if charged else None
            intent = {"id": intent_id, "object": "payment_intent", "amount": amount,
                      "amount_received": amount if charged else 0, "capture_method": "automatic",
                      "confirmation_method": "automatic", "currency": currency,
                      "customer": customer, "latest_charge": latest, "livemode": self.livemode,
                      "metadata": {}, "created": int(time.time()), "payment_method_types": ["card"],
                      "status": "succeeded" if charged else "requires_payment_method"}
            self.payment_intents[intent_id] = intent
            return intent

    def add_price(self, unit_amount: int = 2000, currency: str = "usd", *, active: bool = True,
                  livemode: bool | None = None) -> dict[str, Any]:
        with self._lock:
            price = price_object(new_id("price_"), currency, unit_amount, active=active,
                                 livemode=self.livemode if livemode is None else livemode)
            self.prices[price["id"]] = price
            return price

    def add_subscription(self, *, customer: str = DEFAULT_CUSTOMER, currency: str = "usd",
                         items: tuple[dict[str, Any], ...] = ({"quantity": 1, "unit_amount": 2000},),
                         status: str = "active", livemode: bool | None = None) -> dict[str, Any]:
        with self._lock:
            subscription = subscription_object(customer, list(items), currency, status,
                                               self.livemode if livemode is None else livemode)
            for item in subscription["items"]["data"]:
                self.prices.setdefault(item["price"]["id"], item["price"])
            self.subscriptions[subscription["id"]] = subscription
            return subscription

    def add_dispute(self, *, charge: str | None = None, amount: int = 1000, currency: str = "usd",
                    reason: str = "general", status: str = "needs_response", due_in_days: float = 7,
                    livemode: bool | None = None) -> dict[str, Any]:
        with self._lock:
            charge = charge or self.add_charge(amount, currency)["id"]
            self.charges[charge]["disputed"] = True
            dispute = dispute_object(charge, amount, currency, reason, status,
                                     self.livemode if livemode is None else livemode, due_in_days)
            self.disputes[dispute["id"]] = dispute
            return dispute

    def set_balance(self, currency: str, amount: int, *, pending: int | None = None) -> None:
        with self._lock:
            self.available[currency] = amount
            if pending is not None:
                self.pending[currency] = pending

    def add_bank_account(self, currency: str = "usd", *, bank_name: str = "STRIPE TEST BANK",
                         last4: str = "6789", default: bool = True) -> dict[str, Any]:
        """A payout destination of the account (`GET /v1/account`'s external accounts)."""
        with self._lock:
            account = bank_account_object(currency, bank_name=bank_name, last4=last4, default=default)
            self.account["external_accounts"]["data"].append(account)
            return account
