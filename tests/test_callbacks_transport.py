"""Callbacks over the wire: signatures, the SSRF guard, one delivery attempt and the retry schedule.

No test here touches real DNS: host names are resolved by injected resolvers, and deliveries go to
servers on 127.0.0.1 (allowed with allow_private, as in development).
"""

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import ssl
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from standardwebhooks import Webhook, WebhookVerificationError

from api.callbacks import (
    MAX_ATTEMPTS,
    Target,
    UnsafeCallbackUrl,
    backoff_schedule,
    check_callback_url,
    compat_signature,
    new_message_id,
    new_webhook_secret,
    next_delay,
    post_callback,
    sign,
)
from api.errors import ValidationFailed
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve

BODY = json.dumps({"type": "approval.approved", "data": {"approvalId": "apr_1"}}).encode()

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


# --- the SSRF guard ----------------------------------------------------------------------------------

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

DNS = {
    "api.yourapp.com": [PUBLIC_V4, PUBLIC_V6],
    "localhost": ["127.0.0.1", "::1"],
    "intranet.corp": ["10.1.2.3"],
    "split.example": [PUBLIC_V4, "192.168.1.10"],
    "metadata.example": ["169.254.169.254"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "callbacks.test": ["127.0.0.1"],
}


class FakeResolver:
    """Answers from a table; unknown names fail as getaddrinfo does. Records what it was asked."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = DNS if table is None else table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "callbackUrl resolves to 127.0.0.1, a loopback address"),
        ("http://localhost:8000/hook", "callbackUrl resolves to 127.0.0.1, a loopback address"),
        ("https://10.0.0.1/hook", "resolves to 10.0.0.1, a private address"),
        ("https://172.16.5.4/hook", "resolves to 172.16.5.4, a private address"),
        ("https://192.168.0.1/hook", "resolves to 192.168.0.1, a private address"),
        ("https://intranet.corp/hook", "resolves to 10.1.2.3, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address (cloud metadata)"),
        ("http://metadata.example/", "169.254.169.254, a link-local address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[::1]/hook", "resolves to ::1, a loopback address"),
        ("http://[fe80::1]/hook", "resolves to fe80::1, a link-local address"),
        ("http://[fc00::1]/hook", "resolves to fc00::1, a unique-local address"),
        ("http://[fd12:3456::1]/hook", "a unique-local address"),
        ("http://[::ffff:127.0.0.1]/hook", "which stands for 127.0.0.1, a loopback address"),
        ("http://mapped.example/hook", "which stands for 127.0.0.1, a loopback address"),
        ("http://[2002:a00:1::]/hook", "which stands for 10.0.0.1, a private address"),  # 6to4
        ("http://[64:ff9b::a9fe:a9fe]/hook", "which stands for 169.254.169.254"),  # NAT64
        ("http://[::127.0.0.1]/hook", "a reserved address"),  # IPv4-compatible, deprecated
        ("http://100.64.0.1/hook", "resolves to 100.64.0.1, a carrier-grade NAT address"),
        ("http://0.0.0.0/hook", "resolves to 0.0.0.0, an unspecified address"),
        ("http://[::]/hook", "resolves to ::, an unspecified address"),
        ("http://224.0.0.1/hook", "a multicast address"),
        ("http://[ff02::1]/hook", "a multicast address"),
        ("http://240.0.0.1/hook", "a reserved address"),
        ("http://255.255.255.255/hook", "a reserved address"),
        ("http://198.18.0.1/hook", "a benchmarking address"),
        ("http://192.0.2.10/hook", "a documentation address"),
        ("http://[2001:db8::1]/hook", "a documentation address"),
        ("http://2130706433/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f.1/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f000001/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://127.1/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://0xa.0.0.1/hook", "resolves to 10.0.0.1, a private address"),
        ("http://127.0.0.1./hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://split.example/hook", "resolves to 192.168.1.10, a private address"),
        ("ftp://api.yourapp.com/hook", "callbackUrl must use http or https"),
        ("file:///etc/passwd", "callbackUrl must use http or https"),
        ("javascript:alert(1)", "callbackUrl must use http or https"),
        ("api.yourapp.com/hook", "callbackUrl must use http or https"),
        ("http:///hook", "callbackUrl must include a host"),
        ("https://nowhere.invalid/hook", "callbackUrl host could not be resolved"),
        ("https://user:pass@api.yourapp.com/hook", "must not contain credentials"),
        ("https://api.yourapp.com@127.0.0.1/hook", "must not contain credentials"),
        ("https://api.yourapp.com:0/hook", "port must be between 1 and 65535"),
        ("https://api.yourapp.com:70000/hook", "port must be between 1 and 65535"),
        ("http://%31%32%37.0.0.1/hook", "is not a valid"),
        ("http://1.2.3.4.5/hook", "host is not a valid IPv4 address"),
        ("http://256.256.256.256.256/", "host is not a valid IPv4 address"),
        ("http://[fe80::1%25eth0]/hook", "zone identifier"),
        ("http://bad_host!.example/hook", "host is not a valid host name"),
    ],
)
async def test_unsafe_callback_urls_are_refused_with_a_reason(url, reason):
    with pytest.raises(UnsafeCallbackUrl) as refused:
        await check_callback_url(url, allow_private=False, resolver=FakeResolver())
    assert reason in refused.value.reason
    assert refused.value.reason.startswith("callbackUrl ")


async def test_refusal_is_a_422_validation_error_on_callback_url():
    with pytest.raises(ValidationFailed) as refused:
        await check_callback_url("http://127.0.0.1/", allow_private=False, resolver=FakeResolver())
    error = refused.value
    assert error.status == 422
    assert error.errors == [{"loc": ["callbackUrl"], "msg": "callbackUrl resolves to 127.0.0.1, a loopback address"}]
    assert error.problem()["errors"][0]["loc"] == ["callbackUrl"]


async def test_numeric_ipv4_tricks_never_reach_the_resolver():
    resolver = FakeResolver()
    for url in ("http://2130706433/", "http://0x7f.1/", "http://017700000001/", "http://[::1]/"):
        with pytest.raises(UnsafeCallbackUrl):
            await check_callback_url(url, allow_private=False, resolver=resolver)
    assert resolver.asked == []


async def test_a_public_host_passes_with_every_address_it_resolves_to():
    target = await check_callback_url(
        "https://api.yourapp.com/webhooks/cheqpoint-decision?tenant=7", allow_private=False,
        resolver=FakeResolver(),
    )
    assert target == Target(
        url="https://api.yourapp.com/webhooks/cheqpoint-decision?tenant=7", scheme="https",
        host="api.yourapp.com", port=443, addresses=[PUBLIC_V4, PUBLIC_V6],
    )


@pytest.mark.parametrize(
    ("url", "host", "port", "addresses"),
    [
        (f"http://{PUBLIC_V4}:8080/hook", PUBLIC_V4, 8080, [PUBLIC_V4]),
        (f"https://[{PUBLIC_V6}]/hook", PUBLIC_V6, 443, [PUBLIC_V6]),
        ("HTTPS://API.YourApp.com/hook", "api.yourapp.com", 443, [PUBLIC_V4, PUBLIC_V6]),
        ("http://0x5d.0xb8.0xd8.0x22/", PUBLIC_V4, 80, [PUBLIC_V4]),  # a numeric trick, but public
        ("http://[::ffff:93.184.216.34]/", "::ffff:5db8:d822", 80, ["::ffff:5db8:d822"]),
        ("http://[64:ff9b::93.184.216.34]/", "64:ff9b::5db8:d822", 80, ["64:ff9b::5db8:d822"]),
    ],
)
async def test_public_addresses_pass(url, host, port, addresses):
    target = await check_callback_url(url, allow_private=False, resolver=FakeResolver())
    assert (target.host, target.port, target.addresses) == (host, port, addresses)


async def test_international_names_are_resolved_in_their_ascii_form():
    resolver = FakeResolver({"xn--bcher-kva.example": [PUBLIC_V4]})
    target = await check_callback_url("https://bücher.example/hook", allow_private=False, resolver=resolver)
    assert target.host == "xn--bcher-kva.example"
    assert resolver.asked == ["xn--bcher-kva.example"]


async def test_allow_private_lets_loopback_through_but_not_other_schemes_or_unknown_hosts():
    target = await check_callback_url("http://127.0.0.1:9000/hook", allow_private=True, resolver=FakeResolver())
    assert target.addresses == ["127.0.0.1"]
    target = await check_callback_url("http://localhost/hook", allow_private=True, resolver=FakeResolver())
    assert target.addresses == ["127.0.0.1", "::1"]

    with pytest.raises(UnsafeCallbackUrl, match="must use http or https"):
        await check_callback_url("ftp://127.0.0.1/", allow_private=True, resolver=FakeResolver())
    with pytest.raises(UnsafeCallbackUrl, match="could not be resolved"):
        await check_callback_url("http://nowhere.invalid/", allow_private=True, resolver=FakeResolver())


async def test_a_resolver_that_hangs_or_answers_nothing_counts_as_unresolvable(monkeypatch):
    async def empty(host, port):
        return []

    with pytest.raises(UnsafeCallbackUrl, match="could not be resolved"):
        await check_callback_url("https://api.yourapp.com/", allow_private=False, resolver=empty)

    async def hangs(host, port):
        await asyncio.sleep(60)
        return [PUBLIC_V4]

    monkeypatch.setattr("api.callbacks.ssrf.RESOLVE_TIMEOUT_SECONDS", 0.05)
    with pytest.raises(UnsafeCallbackUrl, match="could not be resolved"):
        await check_callback_url("https://api.yourapp.com/", allow_private=False, resolver=hangs)


# --- delivery against a real receiver -------------------------------------------------------------


@pytest.fixture
def secret():
    return new_webhook_secret()


@pytest.fixture
def receiver(secret):
    return CallbackReceiver(secret)


@pytest.fixture
def receiver_url(receiver):
    with serve(receiver.app) as base_url:
        yield base_url
        receiver.hang_seconds = 0  # release anything still held, so the server stops at once


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


def signed(secret: str, msg_id: str, body: bytes = BODY) -> dict[str, str]:
    return sign(secret, msg_id, datetime.now(UTC), body)


async def local_target(url: str) -> Target:
    return await check_callback_url(url, allow_private=True, resolver=FakeResolver())


async def test_a_signed_delivery_is_verified_and_recorded(http, secret, receiver, receiver_url):
    target = await local_target(f"{receiver_url}/webhooks/cheqpoint?tenant=7")
    msg_id = new_message_id()

    result = await post_callback(http, target, BODY, signed(secret, msg_id))

    assert (result.ok, result.status_code, result.error) == (True, 200, None)
    assert result.duration_ms >= 0
    assert receiver.ids_seen == [msg_id]
    [event] = receiver.events
    assert event.payload == json.loads(BODY)
    [attempt] = receiver.attempts
    assert attempt.path == "/webhooks/cheqpoint?tenant=7"
    assert attempt.headers["user-agent"] == "Cheqpoint-Webhooks/1.0"
    assert attempt.headers["content-type"] == "application/json"
    assert attempt.body == BODY


async def test_compat_signature_is_checked_when_configured(http, secret):
    receiver = CallbackReceiver(secret, check_compat_signature=True)
    with serve(receiver.app) as base_url:
        target = await local_target(f"{base_url}/hook")
        good = {**signed(secret, "msg_good"), "x-cheqpoint-signature": compat_signature(secret, BODY)}
        assert (await post_callback(http, target, BODY, good)).ok
        missing = signed(secret, "msg_missing")
        result = await post_callback(http, target, BODY, missing)
    assert (result.ok, result.status_code) == (False, 400)
    assert receiver.ids_seen == ["msg_good"]
    assert [a.webhook_id for a in receiver.rejected] == ["msg_missing"]


async def test_a_bad_signature_is_refused_and_recorded(http, secret, receiver, receiver_url):
    target = await local_target(f"{receiver_url}/hook")
    headers = signed(new_webhook_secret(), "msg_forged")

    result = await post_callback(http, target, BODY, headers)

    assert (result.ok, result.status_code) == (False, 400)
    assert result.error.startswith("HTTP 400: ")
    assert "bad_signature" in result.error
    assert receiver.events == []
    [rejected] = receiver.rejected
    assert rejected.webhook_id == "msg_forged"
    assert not rejected.verified


async def test_failures_then_success_under_the_same_webhook_id(http, secret, receiver, receiver_url):
    target = await local_target(f"{receiver_url}/hook")
    receiver.fail_first(2, status=503)
    msg_id = new_message_id()

    results = [await post_callback(http, target, BODY, signed(secret, msg_id)) for _ in range(3)]

    assert [(r.ok, r.status_code) for r in results] == [(False, 503), (False, 503), (True, 200)]
    assert results[0].error.startswith("HTTP 503: ")
    assert [a.webhook_id for a in receiver.attempts] == [msg_id] * 3
    assert all(a.verified for a in receiver.attempts)
    assert receiver.ids_seen == [msg_id]


async def test_a_receiver_that_is_down_fails_every_attempt(http, secret, receiver, receiver_url):
    target = await local_target(f"{receiver_url}/hook")
    receiver.down = True
    result = await post_callback(http, target, BODY, signed(secret, "msg_1"))
    assert (result.ok, result.status_code) == (False, 503)
    assert "down" in result.error

    receiver.down = False
    assert (await post_callback(http, target, BODY, signed(secret, "msg_1"))).ok
    assert receiver.ids_seen == ["msg_1"]


async def test_redirects_are_not_followed(http, secret, receiver, receiver_url):
    target = await local_target(f"{receiver_url}/hook")
    receiver.redirect_to(f"{receiver_url}/elsewhere", status=307)

    result = await post_callback(http, target, BODY, signed(secret, "msg_1"))

    assert (result.ok, result.status_code) == (False, 307)
    assert "redirects are not followed" in result.error
    assert f"{receiver_url}/elsewhere" in result.error
    assert [a.path for a in receiver.attempts] == ["/hook"]  # the Location was never requested
    assert receiver.events == []


async def test_no_answer_within_the_timeout_is_a_failed_attempt(http, secret, receiver, receiver_url):
    target = await local_target(f"{receiver_url}/hook")
    receiver.hang_seconds = 10

    result = await post_callback(http, target, BODY, signed(secret, "msg_slow"), timeout=0.3)

    assert (result.ok, result.status_code) == (False, None)
    assert result.error == "no answer within 0.3 s"
    assert 250 <= result.duration_ms < 2000


async def test_the_checked_address_is_used_and_the_name_goes_in_the_host_header(
    http, secret, receiver, receiver_url,
):
    port = httpx.URL(receiver_url).port
    # "callbacks.test" exists in no DNS; reaching the receiver proves the request went to the pinned IP.
    target = Target(
        url=f"http://callbacks.test:{port}/hook?x=1", scheme="http", host="callbacks.test", port=port,
        addresses=["127.0.0.1"],
    )

    result = await post_callback(http, target, BODY, signed(secret, "msg_pinned"))

    assert result.ok, result.error
    [attempt] = receiver.attempts
    assert attempt.headers["host"] == f"callbacks.test:{port}"
    assert attempt.path == "/hook?x=1"
    assert receiver.ids_seen == ["msg_pinned"]


async def test_pinning_end_to_end_through_the_guard(http, secret, receiver, receiver_url):
    port = httpx.URL(receiver_url).port
    resolver = FakeResolver()
    target = await check_callback_url(f"http://callbacks.test:{port}/hook", allow_private=True, resolver=resolver)

    assert (await post_callback(http, target, BODY, signed(secret, "msg_1"))).ok
    assert resolver.asked == ["callbacks.test"]
    assert receiver.attempts[0].headers["host"] == f"callbacks.test:{port}"


async def test_the_next_checked_address_is_tried_when_one_refuses_the_connection(
    http, secret, receiver, receiver_url,
):
    port = httpx.URL(receiver_url).port
    # The receiver listens on 127.0.0.1 only; 127.0.0.2 (also loopback on Linux) refuses the connection.
    target = Target(url=f"http://callbacks.test:{port}/hook", scheme="http", host="callbacks.test",
                    port=port, addresses=["127.0.0.2", "127.0.0.1"])

    result = await post_callback(http, target, BODY, signed(secret, "msg_1"))

    assert result.ok, result.error
    assert receiver.ids_seen == ["msg_1"]


async def test_a_refused_connection_is_a_failed_attempt(http, secret):
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = await local_target(f"http://127.0.0.1:{port}/hook")

    result = await post_callback(http, target, BODY, signed(secret, "msg_1"))

    assert (result.ok, result.status_code) == (False, None)
    assert result.error.startswith("could not connect")


# --- delivery answers, through httpx.MockTransport ---------------------------------------------------

PUBLIC_TARGET = Target(url="https://api.yourapp.com/hook", scheme="https", host="api.yourapp.com", port=443,
                       addresses=[PUBLIC_V4])


async def answer_with(response: httpx.Response, **kwargs):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await post_callback(client, PUBLIC_TARGET, BODY, {"webhook-id": "msg_1"}, **kwargs)
    return result, seen


async def test_the_request_is_built_for_the_pinned_address():
    _, [request] = await answer_with(httpx.Response(204))
    assert str(request.url) == f"https://{PUBLIC_V4}/hook"
    assert request.headers["host"] == "api.yourapp.com"
    assert request.extensions["sni_hostname"] == "api.yourapp.com"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["connection"] == "close"
    assert request.headers["accept-encoding"] == "identity"
    assert request.content == BODY


async def test_an_ipv6_address_is_bracketed_and_a_default_port_left_out():
    target = Target(url="http://[2606:2800:220:1:248:1893:25c8:1946]/h", scheme="http", host=PUBLIC_V6,
                    port=80, addresses=[PUBLIC_V6])
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert (await post_callback(client, target, BODY, {})).ok
    assert str(seen[0].url) == f"http://[{PUBLIC_V6}]/h"
    assert seen[0].headers["host"] == f"[{PUBLIC_V6}]"
    assert "sni_hostname" not in seen[0].extensions


async def test_the_error_text_is_short():
    result, _ = await answer_with(httpx.Response(500, text="x" * 5000 + "\n\n  tail"))
    assert result.error == "HTTP 500: " + "x" * 200


async def test_a_broken_error_body_keeps_the_status():
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield b"partial "
            raise httpx.ReadError("connection reset")

    result, _ = await answer_with(httpx.Response(502, stream=Broken()))
    assert (result.ok, result.status_code) == (False, 502)
    assert result.error == "HTTP 502: partial"


async def test_retry_after_in_seconds_and_as_a_date():
    result, _ = await answer_with(httpx.Response(429, headers={"retry-after": "120"}))
    assert (result.ok, result.status_code, result.retry_after) == (False, 429, 120.0)

    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = "Tue, 01 Jan 2030 12:05:00 GMT"
    result, _ = await answer_with(httpx.Response(503, headers={"retry-after": later}), clock=lambda: now)
    assert result.retry_after == 300.0

    result, _ = await answer_with(httpx.Response(503, headers={"retry-after": "soon"}))
    assert result.retry_after is None


# --- https: certificate validation and SNI for the original name, connection to the pinned IP -------


def make_certificates(tmp_path, name: str):
    """A throwaway CA and a server certificate for `name`; returns (ca_file, cert_file, key_file)."""
    now = datetime.now(UTC)

    def build(subject, issuer, public_key, signing_key, *, ca: bool, issuer_key):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                              content_commitment=False, key_encipherment=False, data_encipherment=False,
                              key_agreement=False, encipher_only=False, decipher_only=False),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cheqpoint test CA")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True, issuer_key=ca_key.public_key())
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_name, key.public_key(),
                 ca_key, ca=False, issuer_key=ca_key.public_key())

    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


@pytest.fixture
async def tls_receiver(tmp_path):
    """A minimal HTTPS server on 127.0.0.1 holding a certificate for callbacks.test only.

    Yields (port, ca_file, seen, answers): `seen` collects {"sni": …, "host": …, "body": …} per
    request; `answers` holds status lines to give before falling back to 204.
    """
    ca_file, cert_file, key_file = make_certificates(tmp_path, "callbacks.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, server_name, _ctx: names.append(server_name)
    seen: list[dict] = []
    answers: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Keeps the connection open between requests unless the client asks to close it, as real
        # servers do, so a client that reused connections across host names would be caught.
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen.append({"sni": names[-1] if names else None, "host": headers.get("host"), "body": body})
                status = answers.pop(0) if answers else b"204 No Content"
                content = b"" if status.startswith(b"2") else b"busy"
                writer.write(b"HTTP/1.1 %s\r\ncontent-length: %d\r\n\r\n%s" % (status, len(content), content))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, ca_file, seen, answers
    finally:
        server.close()


async def test_https_keeps_sni_and_certificate_checks_for_the_original_name(tls_receiver):
    port, ca_file, seen, _ = tls_receiver
    trust = ssl.create_default_context(cafile=str(ca_file))
    target = Target(url=f"https://callbacks.test:{port}/hook", scheme="https", host="callbacks.test",
                    port=port, addresses=["127.0.0.1"])

    async with httpx.AsyncClient(verify=trust) as client:
        result = await post_callback(client, target, BODY, {"webhook-id": "msg_1"})

    assert result.ok, result.error
    assert seen == [{"sni": "callbacks.test", "host": f"callbacks.test:{port}", "body": BODY}]


async def test_https_refuses_a_certificate_for_another_name_even_on_a_warm_client(tls_receiver):
    port, ca_file, seen, answers = tls_receiver
    answers.append(b"503 Service Unavailable")  # an error body is read to the end: the connection is idle
    trust = ssl.create_default_context(cafile=str(ca_file))
    good = Target(url=f"https://callbacks.test:{port}/hook", scheme="https", host="callbacks.test",
                  port=port, addresses=["127.0.0.1"])
    other = Target(url=f"https://other.test:{port}/hook", scheme="https", host="other.test",
                   port=port, addresses=["127.0.0.1"])

    async with httpx.AsyncClient(verify=trust) as client:
        # Same IP and port: a pooled connection verified for callbacks.test must not carry other.test.
        assert (await post_callback(client, good, BODY, {"webhook-id": "msg_1"})).error == "HTTP 503: busy"
        result = await post_callback(client, other, BODY, {"webhook-id": "msg_2"})

    assert (result.ok, result.status_code) == (False, None)
    assert result.error.startswith("could not connect: ")
    assert "certificate is not valid for 'other.test'" in result.error
    assert [request["host"] for request in seen] == [f"callbacks.test:{port}"]


# --- the retry schedule ------------------------------------------------------------------------------


def test_backoff_spans_at_least_a_day_and_never_shrinks():
    delays = backoff_schedule()
    assert delays[:3] == [5, 30, 120]
    assert sum(delays) > 24 * 3600
    assert sum(delays[:-1]) < 24 * 3600  # no more attempts than the promise needs
    assert delays == sorted(delays)
    assert MAX_ATTEMPTS == len(delays) + 1


def test_next_delay_adds_jitter_and_stops_after_the_last_attempt():
    assert next_delay(1, rng=lambda: 0.0) == 5
    assert next_delay(1, rng=lambda: 1.0) == pytest.approx(5.5)
    assert next_delay(2, rng=lambda: 0.5) == pytest.approx(31.5)
    assert next_delay(MAX_ATTEMPTS - 1, rng=lambda: 0.0) == 8 * 3600
    assert next_delay(MAX_ATTEMPTS) is None
    assert next_delay(0) is None


def test_next_delay_honours_retry_after_within_the_longest_step():
    assert next_delay(1, retry_after=120, rng=lambda: 0.0) == 120
    assert next_delay(3, retry_after=1, rng=lambda: 0.0) == 120  # never sooner than the schedule
    assert next_delay(1, retry_after=7 * 24 * 3600, rng=lambda: 0.0) == 8 * 3600
