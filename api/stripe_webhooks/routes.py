"""`POST /stripe/webhook`: Stripe's events, verified with the official library before anything is read.

Stripe signs `"<timestamp>.<raw body>"` with the endpoint's secret (header `Stripe-Signature`);
`stripe.WebhookSignature.verify_header` checks the HMAC in constant time and refuses a timestamp
more than five minutes away, so a captured delivery cannot be replayed later. Nothing is parsed,
logged as content, or recorded before that check passes.
"""

import json

import stripe
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.errors import AppError, NotFound
from api.stripe_webhooks.outcomes import MalformedEvent, parse_event
from api.stripe_webhooks.service import StripeWebhooks

# Stripe's own default: how old a signature's timestamp may be, in seconds.
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE

router = APIRouter(tags=["stripe"])


class BadStripeSignature(AppError):
    status = 400
    title = "Bad Stripe signature"


class BadStripeEvent(AppError):
    status = 400
    title = "Not a Stripe event"


def _service(request: Request) -> StripeWebhooks:
    container = request.app.state.container
    settings = container.settings
    livemode = None if settings.stripe_secret_key is None else not settings.stripe_test_mode
    return StripeWebhooks(container.db, container.effects, clock=container.clock, livemode=livemode)


@router.post("/stripe/webhook", include_in_schema=False)
async def stripe_webhook(request: Request) -> JSONResponse:
    secret = request.app.state.container.settings.stripe_webhook_secret
    if secret is None:
        raise NotFound("Stripe webhooks are not enabled here (STRIPE_WEBHOOK_SECRET is unset)")
    payload = await request.body()
    try:
        stripe.WebhookSignature.verify_header(payload, request.headers.get("stripe-signature"),
                                              secret.get_secret_value(), tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise BadStripeSignature(f"the Stripe-Signature header does not verify: {exc.user_message}") from None
    except UnicodeDecodeError:
        raise BadStripeSignature("the body is not UTF-8, so it cannot carry Stripe's signature") from None
    try:
        notice = parse_event(json.loads(payload))
    except json.JSONDecodeError:
        raise BadStripeEvent("the body is not JSON") from None
    except MalformedEvent as exc:
        raise BadStripeEvent(str(exc)) from None
    outcome = await _service(request).receive(notice)
    return JSONResponse({"received": True, "outcome": outcome.value})
