"""The currency a reviewer types amounts in, as Slack's Edit modal finds it."""

import logging
from typing import TYPE_CHECKING

from api.actions import get_action
from api.approvals.models import Approval
from api.errors import UpstreamUnavailable

if TYPE_CHECKING:
    from api.main import Container

log = logging.getLogger(__name__)


async def currency_for(container: "Container", approval: Approval) -> str:
    """The details' currency; else Stripe's facts'; else what the action asks of Stripe (a refund: its
    charge's)."""
    details = approval.effective_details
    currency = details.get("currency")
    if isinstance(currency, str) and currency:
        return currency.lower()
    facts = (approval.stripe_facts or {}).get("facts") or {}
    if isinstance(facts.get("currency"), str) and facts["currency"]:
        return str(facts["currency"]).lower()
    spec, gateway = get_action(approval.action), container.gateway
    if spec is not None and gateway.configured:
        try:
            currency = await spec.stripe_currency(gateway, details)
        except UpstreamUnavailable as exc:
            log.warning("could not read the currency of %s from Stripe: %s", approval.id, exc.detail)
        else:
            if currency:
                return currency
    return "usd"
