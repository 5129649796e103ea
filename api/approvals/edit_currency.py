"""The currency a reviewer types edited amounts in: one answer for Slack's Edit modal and the console."""

import logging

from api.actions import get_action
from api.approvals.models import Approval
from api.errors import UpstreamUnavailable
from api.execution.gateway import StripeGateway

log = logging.getLogger(__name__)


async def edit_currency(approval: Approval, gateway: StripeGateway) -> str:
    """The details' currency; else the one in Stripe's facts; else what the action asks of Stripe (a
    refund that names none: its charge's); else USD, as Stripe itself would default."""
    details = approval.effective_details
    currency = details.get("currency")
    if isinstance(currency, str) and currency:
        return currency.lower()
    facts = (approval.stripe_facts or {}).get("facts") or {}
    if isinstance(facts.get("currency"), str) and facts["currency"]:
        return str(facts["currency"]).lower()
    spec = get_action(approval.action)
    if spec is not None and gateway.configured:
        try:
            currency = await spec.stripe_currency(gateway, details)
        except UpstreamUnavailable as exc:
            log.warning("could not read the currency of %s from Stripe: %s", approval.id, exc.detail)
        else:
            if currency:
                return currency
    return "usd"


__all__ = ["edit_currency"]
