"""Carrying out approved actions on Stripe: the gateway (and the execute job beside it)."""

from api.execution.gateway import (
    StripeFinal,
    StripeGateway,
    StripeGatewayError,
    StripeNotConfigured,
    StripeRetryable,
)

__all__ = ["StripeFinal", "StripeGateway", "StripeGatewayError", "StripeNotConfigured", "StripeRetryable"]
