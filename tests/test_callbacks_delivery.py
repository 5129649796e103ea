"""One callback delivery attempt, and the retry schedule between attempts.

No test here touches real DNS: host names are resolved by injected resolvers, and deliveries go to
servers on 127.0.0.1 (allowed with allow_private, as in development).
"""

import json
import socket
from datetime import UTC, datetime

import httpx
import pytest

from api.callbacks import (
    MAX_ATTEMPTS,
    Target,
    backoff_schedule,
    check_callback_url,
    compat_signature,
    new_message_id,
    new_webhook_secret,
    next_delay,
    post_callback,
    sign,
)
from tests.callbacks_helpers import BODY, PUBLIC_V4, PUBLIC_V6, FakeResolver
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve

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
