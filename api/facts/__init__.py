"""Stripe's facts: requests verified against Stripe's own objects before anyone reviews them."""

from api.facts.models import Contradicted, Verification
from api.facts.names import STRIPE_FIELDS, stripe_variable
from api.facts.verify import FAMILIES, Verifier

__all__ = ["FAMILIES", "STRIPE_FIELDS", "Contradicted", "Verification", "Verifier", "stripe_variable"]
