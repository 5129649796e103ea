"""Verification of a catalogue write against Stripe: one entry point for intake, the retry job and
the check right before execution.

Outcomes: a `Verification` (verified, or unverified when Stripe could not be asked), `None` when
there is nothing to verify (Stripe not configured, a lookup or a custom action), or `Contradicted`
naming the detail that disagrees with Stripe.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from api.actions import get_action
from api.execution.gateway import StripeGateway, StripeGatewayError, StripeNotConfigured
from api.facts.disputes import verify_dispute
from api.facts.models import Verification
from api.facts.payouts import verify_payout
from api.facts.reader import DEFAULT_TTL_SECONDS, FactsReader
from api.facts.refunds import verify_refund
from api.facts.subscriptions import verify_subscription

log = logging.getLogger(__name__)

Family = Callable[..., Awaitable[Verification]]

# One verifier per family of Stripe facts; an action names its family (`ActionSpec.family`).
FAMILIES: dict[str, Family] = {
    "refund": verify_refund,
    "payout": verify_payout,
    "subscription": verify_subscription,
    "dispute": verify_dispute,
}


def family_of(action: str) -> Family | None:
    spec = get_action(action)
    return FAMILIES.get(spec.family) if spec is not None and spec.family else None


class Verifier:
    def __init__(self, gateway: StripeGateway, *, ttl: float = DEFAULT_TTL_SECONDS) -> None:
        self.gateway = gateway
        self.reader = FactsReader(gateway, ttl=ttl)

    def applies_to(self, action: str) -> bool:
        return self.gateway.configured and family_of(action) is not None

    async def verify(self, action: str, details: dict[str, Any], now: datetime, *,
                     fresh: bool = False) -> Verification | None:
        """Raises `Contradicted`; Stripe's own failures make the result `unverified`."""
        family = family_of(action)
        if family is None or not self.gateway.configured:
            return None
        try:
            return await family(self.reader, details, now, fresh=fresh)
        except StripeNotConfigured:
            return None
        except StripeGatewayError as exc:
            log.warning("could not verify a %s request against Stripe: %s", action, exc.message)
            return unverified(self.gateway.livemode, exc)


def unverified(livemode: bool, exc: StripeGatewayError) -> Verification:
    status = getattr(exc, "http_status", None)
    reason = f"Stripe answered {status}" if status else "Stripe could not be reached"
    return Verification("unverified", livemode, warnings=["not verified against Stripe"], reason=reason)
