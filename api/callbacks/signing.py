"""Signatures for outgoing callbacks.

Every callback is signed per the Standard Webhooks specification (CONTRACT §4) with the
Connection's `whsec_…` secret. Callbacks for requests made through the Cheqpoint-compatible API
also carry `x-cheqpoint-signature` (CONTRACT §3b), a plain hex HMAC that Cheqpoint's own SDKs check.
"""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
MESSAGE_ID_PREFIX = "msg_"
COMPAT_SIGNATURE_HEADER = "x-cheqpoint-signature"

# 32 random bytes: a full-strength HMAC-SHA256 key, inside the 24–64 bytes Standard Webhooks asks for.
_SECRET_BYTES = 32


def new_webhook_secret() -> str:
    """A fresh signing secret, `whsec_` + standard base64, as Standard Webhooks libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def new_message_id() -> str:
    """A `webhook-id` for one delivery.

    The caller stores it and reuses it for every attempt of that delivery, so receivers can drop
    duplicates. Hex only: the id is joined with `.` into the signed content, so it must not contain one.
    """
    return MESSAGE_ID_PREFIX + secrets.token_hex(16)


def sign(secret: str, msg_id: str, timestamp: datetime, body: bytes, *,
         previous: Sequence[str] = ()) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent as message `msg_id` at `timestamp`.

    With `previous` secrets (a rotation's grace period), `webhook-signature` carries one `v1,…` entry
    per secret, separated by spaces, current first: Standard Webhooks receivers accept the message when
    any entry verifies, so an agent still holding the old secret keeps verifying until it switches.

    A naive `timestamp` is taken as UTC (the service's clock is UTC). Aware ones are converted first,
    because the library replaces the zone instead of converting it.
    """
    utc = timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp.astimezone(UTC)
    # The library signs text; callback bodies are JSON, hence UTF-8, so this round-trips byte for byte.
    text = body.decode("utf-8")
    signatures = [Webhook(key).sign(msg_id=msg_id, timestamp=utc, data=text) for key in (secret, *previous)]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(utc.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def compat_signature(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body, keyed with the secret string exactly as shown (`whsec_…`).

    Unlike Standard Webhooks, the key is not base64-decoded: that is what Cheqpoint's SDKs compute.
    """
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
