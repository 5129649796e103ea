"""The one place the service talks to Stripe.

`StripeGateway` owns a single `stripe.StripeClient`, built from settings at start-up and closed
at shutdown, and translates Stripe's exceptions into two kinds the worker can act on:
`StripeRetryable` (try again later with the same idempotency key) and `StripeFinal` (trying again
cannot help). Every method returns plain dicts, so nothing outside this module sees a
`StripeObject`.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import stripe

DEFAULT_API_BASE = "https://api.stripe.com"
# Verification reads sit on the intake path: an agent should not wait 30 s for a slow Stripe. When a
# read takes longer than this the request is accepted unverified and verified again later.
VERIFY_TIMEOUT_SECONDS = 3.0
# `GET /v1/invoices/upcoming` is read in the API version of the vendored specification: newer
# versions replaced it with `POST /v1/invoices/create_preview`, a write-shaped call.
UPCOMING_INVOICE_API_VERSION = "2023-08-16"


class StripeGatewayError(Exception):
    """Base of what the gateway raises; `as_error()` is the approval's `execution.error`."""

    type = "api_error"
    code: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_error(self) -> dict[str, str | None]:
        return {"type": self.type, "code": self.code, "message": self.message}


class StripeRetryable(StripeGatewayError):
    """Stripe could not answer now (network, 5xx, 409, rate limit or lock timeout)."""

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None,
                 connection_lost: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        # The connection failed without a timeout (e.g. a kept-alive one the other side had closed):
        # asking again at once is likely to work.
        self.connection_lost = connection_lost


class StripeFinal(StripeGatewayError):
    """Stripe refused the request; repeating it would be refused again."""

    def __init__(self, type: str, code: str | None, message: str, *, param: str | None = None,
                 decline_code: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.http_status = http_status

    def __repr__(self) -> str:
        return f"StripeFinal(type={self.type!r}, code={self.code!r}, message={self.message!r})"


class StripeNotConfigured(StripeFinal):
    def __init__(self) -> None:
        super().__init__("not_configured", "stripe_not_configured",
                         "STRIPE_SECRET_KEY is not set: Stripe actions cannot be executed")


def translate(exc: stripe.StripeError) -> StripeGatewayError:
    """Stripe's exception → ours. Retryable only where the same request can later succeed."""
    status = exc.http_status
    error = exc.error
    code = getattr(error, "code", None) or exc.code
    message = exc.user_message or str(exc)
    if isinstance(exc, stripe.APIConnectionError):
        # The request may or may not have reached Stripe; the idempotency key makes a retry safe.
        timed_out = isinstance(exc.__cause__, httpx.TimeoutException)
        return StripeRetryable(f"could not reach Stripe: {message}", connection_lost=not timed_out)
    if isinstance(exc, stripe.RateLimitError) or status in (409, 429) or (status or 0) >= 500:
        return StripeRetryable(f"Stripe answered {status}: {message}", code=code, http_status=status)
    if isinstance(exc, stripe.CardError):
        kind = "card_error"
    elif isinstance(exc, stripe.IdempotencyError):
        kind = "idempotency_error"
    elif isinstance(exc, stripe.AuthenticationError):
        kind = "authentication_error"
    elif isinstance(exc, stripe.PermissionError):
        kind = "permission_error"
    else:
        kind = getattr(error, "type", None) or "invalid_request_error"
    return StripeFinal(kind, code, message, param=getattr(error, "param", None),
                       decline_code=getattr(error, "decline_code", None), http_status=status)


class StripeGateway:
    def __init__(self, secret_key: str | None, api_base: str = DEFAULT_API_BASE, *,
                 timeout: float = 30.0, max_network_retries: int = 2,
                 verify_timeout: float = VERIFY_TIMEOUT_SECONDS) -> None:
        self._secret_key = secret_key or None
        self._http: stripe.HTTPXClient | None = None
        self._quick_http: stripe.HTTPXClient | None = None
        self._client: stripe.StripeClient | None = None
        self._quick: stripe.StripeClient | None = None
        if self._secret_key:
            self._http = stripe.HTTPXClient(timeout=timeout)
            self._client = stripe.StripeClient(
                self._secret_key,
                base_addresses={"api": api_base.rstrip("/")},
                # The SDK retries network errors, 409s and 5xx itself, reusing the request's
                # idempotency key; the worker's retries come on top with the same key.
                max_network_retries=max_network_retries,
                http_client=self._http,
            )
            # Verification reads: a short timeout and no retries of the SDK's own, since an
            # unanswered read only makes the request wait for a later verification.
            self._quick_http = stripe.HTTPXClient(timeout=verify_timeout)
            self._quick = stripe.StripeClient(
                self._secret_key, base_addresses={"api": api_base.rstrip("/")}, max_network_retries=0,
                http_client=self._quick_http)

    @property
    def http_client(self) -> stripe.HTTPXClient | None:
        """The SDK's HTTP client, for the metrics to time each call."""
        return self._http

    @property
    def configured(self) -> bool:
        return self._client is not None

    @property
    def test_mode(self) -> bool:
        return bool(self._secret_key) and self._secret_key.startswith(("sk_test_", "rk_test_"))

    @property
    def livemode(self) -> bool:
        """The mode of the objects this key sees: live unless the key is a test key."""
        return self.configured and not self.test_mode

    async def aclose(self) -> None:
        for http in (self._http, self._quick_http):
            if http is not None:
                await http.close_async()

    async def _call(self, operation: Callable[[stripe.StripeClient], Awaitable[Any]], *,
                    quick: bool = False) -> dict[str, Any]:
        client = self._quick if quick else self._client
        if client is None:
            raise StripeNotConfigured()
        try:
            obj = await operation(client)
        except stripe.StripeError as exc:
            raise translate(exc) from exc
        return obj.to_dict(for_json=True)

    @staticmethod
    def _key(idempotency_key: str) -> dict[str, str]:
        return {"idempotency_key": idempotency_key}

    # -- writes: each carries the caller's idempotency key ----------------------------------------

    async def create_refund(self, params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.refunds.create_async(
            params=params, options=self._key(idempotency_key)))

    async def create_payout(self, params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.payouts.create_async(
            params=params, options=self._key(idempotency_key)))

    async def update_subscription(self, subscription_id: str, params: dict[str, Any], *,
                                  idempotency_key: str) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.subscriptions.update_async(
            subscription_id, params=params, options=self._key(idempotency_key)))

    async def cancel_subscription(self, subscription_id: str, params: dict[str, Any], *,
                                  idempotency_key: str) -> dict[str, Any]:
        # Stripe ignores idempotency keys on DELETE; it is sent anyway so logs tie the call to us.
        return await self._call(lambda c: c.v1.subscriptions.cancel_async(
            subscription_id, params=params, options=self._key(idempotency_key)))

    async def update_dispute(self, dispute_id: str, params: dict[str, Any], *,
                             idempotency_key: str) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.disputes.update_async(
            dispute_id, params=params, options=self._key(idempotency_key)))

    async def close_dispute(self, dispute_id: str, *, idempotency_key: str) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.disputes.close_async(
            dispute_id, options=self._key(idempotency_key)))

    # -- reads --------------------------------------------------------------------------------------

    # `quick=True`: the verification client (short timeout, no retries of its own).

    async def retrieve_balance(self, *, quick: bool = False) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.balance.retrieve_async(), quick=quick)

    async def retrieve_charge(self, charge_id: str, *, quick: bool = False) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.charges.retrieve_async(charge_id), quick=quick)

    async def retrieve_payment_intent(self, payment_intent_id: str, *, quick: bool = False) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.payment_intents.retrieve_async(payment_intent_id), quick=quick)

    async def retrieve_customer(self, customer_id: str, *, quick: bool = False) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.customers.retrieve_async(customer_id), quick=quick)

    async def list_charges(self, params: dict[str, Any], *, quick: bool = False) -> dict[str, Any]:
        """`GET /v1/charges`: `customer`, `created`, `limit`, `expand` (e.g. `data.refunds`)."""
        return await self._call(lambda c: c.v1.charges.list_async(params=params), quick=quick)

    async def retrieve_price(self, price_id: str, *, quick: bool = False) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.prices.retrieve_async(price_id), quick=quick)

    async def retrieve_account(self, *, quick: bool = False) -> dict[str, Any]:
        """The key's own account, with its external accounts (payout destinations)."""
        return await self._call(lambda c: c.v1.accounts.retrieve_current_async(), quick=quick)

    async def upcoming_invoice(self, params: dict[str, Any], *, quick: bool = False) -> dict[str, Any]:
        """`GET /v1/invoices/upcoming`: the next invoice of a subscription, with proposed changes
        (`subscription_items`, `subscription_proration_behavior`) when given."""
        async def preview(client: stripe.StripeClient) -> Any:
            response = await client.raw_request_async(
                "get", "/v1/invoices/upcoming", stripe_version=UPCOMING_INVOICE_API_VERSION, **params)
            return client.deserialize(json.loads(response.body), api_mode="V1")

        return await self._call(preview, quick=quick)

    async def list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.refunds.list_async(params=params))

    async def retrieve_subscription(self, subscription_id: str, *, quick: bool = False) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.subscriptions.retrieve_async(subscription_id), quick=quick)

    async def retrieve_dispute(self, dispute_id: str, *, quick: bool = False) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.disputes.retrieve_async(dispute_id), quick=quick)

    async def list_disputes(self, params: dict[str, Any], *, quick: bool = False) -> dict[str, Any]:
        return await self._call(lambda c: c.v1.disputes.list_async(params=params), quick=quick)

    async def refundable_amount(self, charge_id: str | None = None,
                                payment_intent_id: str | None = None) -> tuple[int, str]:
        """What is still refundable on a charge (or a payment intent's latest charge), in minor
        units, and its currency: the ceiling for a reviewer's edit of a refund amount."""
        if (charge_id is None) == (payment_intent_id is None):
            raise ValueError("give exactly one of charge_id or payment_intent_id")
        if charge_id is None:
            intent = await self.retrieve_payment_intent(payment_intent_id or "")
            latest = intent.get("latest_charge")
            if isinstance(latest, dict):
                latest = latest.get("id")
            if not latest:  # nothing was ever charged on this intent
                return 0, intent["currency"]
            charge_id = latest
        charge = await self.retrieve_charge(charge_id)
        captured = charge.get("amount_captured", charge["amount"]) if charge.get("captured", True) else 0
        return max(captured - charge.get("amount_refunded", 0), 0), charge["currency"]
