"""Cached reads of Stripe objects for verification.

A burst of requests about one charge should read it once: each object is kept for a few seconds
(`ttl`), and reads of an object already on its way share that one request. Failures are never
kept, so the next request asks again. `fresh=True` (the check right before executing) skips the
cache: a charge refunded a second ago must be seen as refunded.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from api.execution.gateway import StripeGateway, StripeRetryable

DEFAULT_TTL_SECONDS = 5.0
_MAX_ENTRIES = 10_000

Loader = Callable[[], Awaitable[dict[str, Any]]]


async def _once_more_if_dropped(load: Loader) -> dict[str, Any]:
    """A connection dropped (not timed out) is asked again once, at once: pooled connections left
    idle may have been closed by the other side. Timeouts, 429s and 5xx are not repeated here."""
    try:
        return await load()
    except StripeRetryable as exc:
        if not exc.connection_lost:
            raise
    return await load()


class FactsReader:
    def __init__(self, gateway: StripeGateway, *, ttl: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.gateway = gateway
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}

    @property
    def livemode(self) -> bool:
        return self.gateway.livemode

    async def read(self, key: str, load: Loader, *, fresh: bool = False) -> dict[str, Any]:
        now = self._clock()
        if not fresh:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
            pending = self._inflight.get(key)
            if pending is not None:
                return await asyncio.shield(pending)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await _once_more_if_dropped(load)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: nobody else may be waiting on it
            raise
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
        future.set_result(value)
        self._remember(key, value, now)
        return value

    def _remember(self, key: str, value: dict[str, Any], now: float) -> None:
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
        self._cache[key] = (now + self.ttl, value)

    # -- the objects verification reads ---------------------------------------------------------

    async def charge(self, charge_id: str, *, fresh: bool = False) -> dict[str, Any]:
        return await self.read(f"charge:{charge_id}",
                               lambda: self.gateway.retrieve_charge(charge_id, quick=True), fresh=fresh)

    async def payment_intent(self, intent_id: str, *, fresh: bool = False) -> dict[str, Any]:
        return await self.read(f"payment_intent:{intent_id}",
                               lambda: self.gateway.retrieve_payment_intent(intent_id, quick=True), fresh=fresh)

    async def customer(self, customer_id: str) -> dict[str, Any]:
        return await self.read(f"customer:{customer_id}",
                               lambda: self.gateway.retrieve_customer(customer_id, quick=True))

    async def customer_charges(self, customer_id: str) -> dict[str, Any]:
        """The customer's charges (at most 100, newest first) with their refunds expanded."""
        params = {"customer": customer_id, "limit": 100, "expand": ["data.refunds"]}
        return await self.read(f"customer_charges:{customer_id}",
                               lambda: self.gateway.list_charges(params, quick=True))

    async def disputes_of_charge(self, charge_id: str) -> dict[str, Any]:
        return await self.read(f"charge_disputes:{charge_id}", lambda: self.gateway.list_disputes(
            {"charge": charge_id, "limit": 1}, quick=True))

    async def balance(self, *, fresh: bool = False) -> dict[str, Any]:
        return await self.read("balance", lambda: self.gateway.retrieve_balance(quick=True), fresh=fresh)

    async def account(self) -> dict[str, Any]:
        return await self.read("account", lambda: self.gateway.retrieve_account(quick=True))

    async def subscription(self, subscription_id: str, *, fresh: bool = False) -> dict[str, Any]:
        return await self.read(f"subscription:{subscription_id}",
                               lambda: self.gateway.retrieve_subscription(subscription_id, quick=True),
                               fresh=fresh)

    async def price(self, price_id: str) -> dict[str, Any]:
        return await self.read(f"price:{price_id}", lambda: self.gateway.retrieve_price(price_id, quick=True))

    async def upcoming_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        key = "upcoming:" + repr(sorted(params.items()))
        return await self.read(key, lambda: self.gateway.upcoming_invoice(params, quick=True))

    async def dispute(self, dispute_id: str, *, fresh: bool = False) -> dict[str, Any]:
        return await self.read(f"dispute:{dispute_id}",
                               lambda: self.gateway.retrieve_dispute(dispute_id, quick=True), fresh=fresh)
