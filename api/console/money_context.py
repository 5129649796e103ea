"""The currency a reviewer types amounts in, as Slack's Edit modal finds it."""

import logging
from typing import TYPE_CHECKING

from api.approvals.models import Approval
from api.execution.gateway import StripeGatewayError

if TYPE_CHECKING:
    from api.main import Container

log = logging.getLogger(__name__)


async def currency_for(container: "Container", approval: Approval) -> str:
    """The details' currency; for a refund that names none, its charge's (Stripe's facts, else Stripe)."""
    details = approval.effective_details
    currency = details.get("currency")
    if isinstance(currency, str) and currency:
        return currency.lower()
    facts = (approval.stripe_facts or {}).get("facts") or {}
    if isinstance(facts.get("currency"), str) and facts["currency"]:
        return str(facts["currency"]).lower()
    gateway = container.gateway
    if approval.action == "issue_refund" and gateway.configured:
        try:
            _, currency = await gateway.refundable_amount(details.get("charge_id"), details.get("payment_intent_id"))
            return str(currency).lower()
        except StripeGatewayError as exc:
            log.warning("could not read the currency of %s's charge from Stripe: %s", approval.id, exc.message)
    return "usd"
