"""`POST /slack/events` under attack, without credentials and with them: malformed or unverified input
is answered 400 or 401, never 500; nothing is logged as a traceback; nothing the sender wrote reaches
the log unless Slack signed it."""

import json
import logging
from urllib.parse import urlencode

import pytest

from bot import inbound
from tests.conftest import REFUND
from tests.slack_helpers import APPROVER, interactivity_body, signature_headers, slack_harness

MARKER = "FORGED-LINE-7f3a"
FORGED = f"x\n2026-01-01 INFO cheqpoint operator approved apr_123 {MARKER}"


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


def assert_clean_log(caplog: pytest.LogCaptureFixture) -> None:
    """No traceback and nothing the sender wrote, at any level."""
    for record in caplog.records:
        assert record.exc_info is None, (record.name, record.getMessage())
        assert MARKER not in record.getMessage(), (record.name, record.getMessage())
    assert "Traceback" not in caplog.text and MARKER not in caplog.text


async def post(slack, body: bytes, headers: dict[str, str]):
    return await slack.http.post("/slack/events", content=body, headers=headers)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


SIGNED_BUT_MALFORMED = {
    "a body of `{`": (b"{", "application/json"),
    "JSON nested 10,000 deep": (('{"type": "event_callback", "x": ' + nested(10_000) + "}").encode(),
                                "application/json"),
    "JSON nested 500 deep": (('{"type": "event_callback", "x": ' + nested(500) + "}").encode(), "application/json"),
    "a JSON array": (b"[1, 2]", "application/json"),
    "a form that is not a payload": (f"text={MARKER}&command=/approve".encode(), "application/x-www-form-urlencoded"),
    "a payload that is not JSON": (urlencode({"payload": f"{{{MARKER}"}).encode(), "application/x-www-form-urlencoded"),
    "a payload nested 10,000 deep": (urlencode({"payload": nested(10_000)}).encode(),
                                     "application/x-www-form-urlencoded"),
    "two payloads": (b"payload=%7B%7D&payload=%7B%7D", "application/x-www-form-urlencoded"),
    "a body that is not UTF-8": (b"payload=\xff\xfe" + MARKER.encode(), "application/x-www-form-urlencoded"),
    "an unknown content type": (MARKER.encode(), "text/plain"),
}


@pytest.mark.parametrize("case", list(SIGNED_BUT_MALFORMED))
async def test_signed_but_malformed_bodies_are_400_without_a_traceback(make_settings, clock, caplog, case):
    caplog.set_level(logging.DEBUG)
    async with slack_harness(make_settings, clock) as slack:
        body, content_type = SIGNED_BUT_MALFORMED[case]
        response = await post(slack, body, signature_headers(body, content_type=content_type))
    assert response.status_code == 400, response.text
    assert_clean_log(caplog)


UNVERIFIED = {
    "a body of `{`, unsigned": (b"{", {"Content-Type": "application/json"}),
    "a non-numeric timestamp": (b"{", {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "soon",
                                       "X-Slack-Signature": "v0=" + "0" * 64}),
    "a timestamp of 10**100": (b"{", {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "1" + "0" * 100,
                                      "X-Slack-Signature": "v0=" + "0" * 64}),
    "JSON nested 10,000 deep, unsigned": (nested(10_000).encode(), {"Content-Type": "application/json"}),
    "a forged log line, badly signed": (interactivity_body({"type": "block_actions", "user": {"id": FORGED}}),
                                        signature_headers(b"something else")),
    "a signature that is not hex": (b"payload=%7B%7D", {**signature_headers(b"payload=%7B%7D"),
                                                        "X-Slack-Signature": f"v0={MARKER}"}),
}


@pytest.mark.parametrize("case", list(UNVERIFIED))
async def test_unverified_requests_are_401_and_their_bodies_are_not_logged(make_settings, clock, caplog, case):
    # The level is set before the app is built: Bolt's loggers copy the root level when created,
    # and a service that logs at INFO or DEBUG must not print what an unverified sender wrote.
    caplog.set_level(logging.DEBUG)
    async with slack_harness(make_settings, clock) as slack:
        body, headers = UNVERIFIED[case]
        response = await post(slack, body, headers)
    assert response.status_code == 401, response.text
    assert MARKER not in response.text
    assert_clean_log(caplog)


def test_a_signature_made_with_an_empty_secret_proves_nothing():
    # With an empty signing secret anyone can compute the HMAC; the gate refuses rather than trust it.
    body = b'{"type": "url_verification", "challenge": "abc"}'
    headers = signature_headers(body, secret="", content_type="application/json")
    refusal = inbound.check("", body, {key.lower(): value for key, value in headers.items()})
    assert refusal is not None and refusal.status == 401


async def test_a_properly_signed_request_still_goes_through(slack):
    body = json.dumps({"type": "url_verification", "token": "t", "challenge": "c-123"}).encode()
    response = await post(slack, body, signature_headers(body, content_type="application/json"))
    assert response.status_code == 200 and "c-123" in response.text


async def test_a_failing_listener_logs_one_short_line_without_the_user_or_a_traceback(slack, caplog):
    created = await slack.request({**REFUND, "execute": False})
    await slack.settle()
    slack.fake.fail_next("views.open", "invalid_trigger_id")  # the Edit click's listener fails
    caplog.set_level(logging.INFO)
    # The listener acks, then fails; what Bolt answers then depends on which it sees first (200,
    # or 404 when the failure cleared the ack). This test is about the log.
    await slack.click("edit", created["approvalId"])
    failures = [r for r in caplog.records if r.name == "bot.app" and r.levelno >= logging.ERROR]
    assert len(failures) == 1
    line = failures[0].getMessage()
    assert "SlackApiError" in line and "block_actions edit" in line
    assert APPROVER not in line and "\n" not in line and failures[0].exc_info is None
    assert (await slack.approval(created["approvalId"]))["status"] == "pending"
