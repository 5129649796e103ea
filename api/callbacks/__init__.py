"""Callbacks: Standard Webhooks signing, the SSRF guard and one delivery attempt over the wire.

The pure, transport-level pieces live here; the delivery job that stores attempts and schedules
retries through the outbox uses them.
"""

from api.callbacks.delivery import (
    MAX_ATTEMPTS,
    AttemptResult,
    backoff_schedule,
    next_delay,
    post_callback,
)
from api.callbacks.signing import (
    COMPAT_SIGNATURE_HEADER,
    compat_signature,
    new_message_id,
    new_webhook_secret,
    sign,
)
from api.callbacks.ssrf import Target, UnsafeCallbackUrl, check_callback_url

__all__ = [
    "COMPAT_SIGNATURE_HEADER",
    "MAX_ATTEMPTS",
    "AttemptResult",
    "Target",
    "UnsafeCallbackUrl",
    "backoff_schedule",
    "check_callback_url",
    "compat_signature",
    "new_message_id",
    "new_webhook_secret",
    "next_delay",
    "post_callback",
    "sign",
]
