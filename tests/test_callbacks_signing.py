"""Callback signatures: Standard Webhooks signing, the compat header, secrets and message ids."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from api.callbacks import (
    compat_signature,
    new_message_id,
    new_webhook_secret,
    sign,
)
from tests.callbacks_helpers import BODY

# --- signing ---------------------------------------------------------------------------------------


def test_signature_verifies_with_the_standard_webhooks_library():
    secret = new_webhook_secret()
    now = datetime.now(UTC)
    headers = sign(secret, "msg_abc", now, BODY)

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_signature_fails_with_another_secret_or_a_changed_body():
    secret = new_webhook_secret()
    headers = sign(secret, "msg_abc", datetime.now(UTC), BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"apr_1", b"apr_2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_other"})


def test_signature_timestamp_is_the_same_instant_in_any_zone():
    secret = new_webhook_secret()
    utc = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    elsewhere = utc.astimezone(timezone(timedelta(hours=-7)))
    naive_utc = utc.replace(tzinfo=None)

    assert sign(secret, "msg_1", elsewhere, BODY) == sign(secret, "msg_1", utc, BODY)
    assert sign(secret, "msg_1", naive_utc, BODY) == sign(secret, "msg_1", utc, BODY)
    assert sign(secret, "msg_1", utc, BODY)["webhook-timestamp"] == "1893553445"


def test_signature_matches_the_specification_by_hand():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    expected = base64.b64encode(
        hmac.new(b"k" * 32, b"msg_1.1893553445." + BODY, hashlib.sha256).digest()
    ).decode()
    assert sign(secret, "msg_1", at, BODY)["webhook-signature"] == f"v1,{expected}"


def test_compat_signature_is_hex_hmac_keyed_with_the_secret_as_shown():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    expected = hmac.new(secret.encode("utf-8"), BODY, hashlib.sha256).hexdigest()

    assert compat_signature(secret, BODY) == expected
    # Computed apart, with `printf '{}' | openssl dgst -sha256 -hmac "$secret"`.
    assert compat_signature(secret, b"{}") == "6cbbcdf2c8016ca85b50543b19e8e121ef16137967bdfa3ce660972922bafaeb"
    assert compat_signature(secret + "x", BODY) != expected


def test_new_webhook_secret_is_standard_webhooks_shaped_and_unique():
    secrets_made = {new_webhook_secret() for _ in range(50)}
    assert len(secrets_made) == 50
    for secret in secrets_made:
        assert secret.startswith("whsec_")
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        assert 24 <= len(key) <= 64
        Webhook(secret)  # accepted by the reference library


def test_new_message_id_is_prefixed_unique_and_safe_to_sign():
    ids = {new_message_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("msg_") and "." not in i and " " not in i for i in ids)
