"""Checking the service's callbacks (CONTRACT §4), per the Standard Webhooks specification.

    event = verify_webhook(request_body_bytes, request.headers, os.environ["CHEQPOINT_WEBHOOK_SECRET"])
    if event.type == "approval.approved":
        ...  # event.approval.effective_details

Verify the raw body exactly as received: re-serialised JSON no longer matches the signature.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import standardwebhooks

from cheqpoint_client.errors import WebhookVerificationError
from cheqpoint_client.models import Approval, WebhookEvent


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """The verified event, or `WebhookVerificationError` (bad or missing signature, stale timestamp,
    a body that is not a Cheqpoint event). Deliveries are at least once: drop repeats by `event.id`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        payload: Any = standardwebhooks.Webhook(secret).verify(body, lowered)
    except standardwebhooks.WebhookVerificationError as exc:
        raise WebhookVerificationError(f"callback not verified: {exc}") from None
    except Exception as exc:  # a malformed secret or signature header, or a body that is not JSON
        raise WebhookVerificationError(f"callback not verified: {type(exc).__name__}: {exc}") from None
    if not (isinstance(payload, dict) and isinstance(payload.get("data"), dict) and "type" in payload):
        raise WebhookVerificationError("callback verified but is not a Cheqpoint event (type, timestamp, data)")
    try:
        approval = Approval.from_dict(payload["data"])
        stamp = payload.get("timestamp")
        timestamp = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    except (KeyError, TypeError, ValueError) as exc:
        raise WebhookVerificationError(f"callback verified but its approval is malformed: {exc}") from None
    return WebhookEvent(id=lowered["webhook-id"], type=payload["type"], timestamp=timestamp, approval=approval,
                        raw=payload)


__all__ = ["verify_webhook"]
