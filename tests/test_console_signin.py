"""Sign in with Slack, over the real wire: the console, the fake Slack's OpenID endpoints, cookies."""

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from api.config import Settings
from api.console.sessions import SESSION_COOKIE, Cookies
from tests.conftest import REFUND
from tests.console_helpers import (
    AUDITOR,
    OUTSIDER,
    SESSION_SECRET,
    STRANGER,
    VIEWER,
    ConsoleHarness,
    console_harness,
)
from tests.slack_helpers import APPROVER, GROUP_MEMBER


def session_cookie(h: ConsoleHarness) -> str | None:
    return h.http.cookies.get(SESSION_COOKIE)


async def test_an_approver_signs_in_and_sees_the_queue_with_strict_headers(make_settings: Callable[..., Any],
                                                                           clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        created = await h.request({**REFUND, "execute": False})
        answer = await h.sign_in(APPROVER, "/console?mine=1")
        assert answer.status_code == 303 and answer.headers["location"] == "/console?mine=1"
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
        queue = await h.http.get("/console?mine=1")
        assert queue.status_code == 200
        assert created["approvalId"] in queue.text and "$349.00" in queue.text and "support-agent" in queue.text
        csp = queue.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
        assert "<script" not in queue.text


async def test_group_members_and_viewers_sign_in_everyone_else_is_refused(make_settings: Callable[..., Any],
                                                                          clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        assert (await h.sign_in(GROUP_MEMBER)).status_code == 303  # an approver through S0FINANCE
        h.http.cookies.clear()
        assert (await h.sign_in(AUDITOR)).status_code == 303  # a viewer through S0AUDIT
        page = await h.http.get("/console")
        assert page.status_code == 200 and "viewer" in page.text
        h.http.cookies.clear()
        refused = await h.sign_in(STRANGER)
        assert refused.status_code == 403 and "neither an approver nor listed" in refused.text
        assert session_cookie(h) is None


async def test_no_session_or_a_forged_one_gets_the_sign_in_page(make_settings: Callable[..., Any],
                                                                clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        assert (await h.http.get("/console")).status_code == 401
        await h.sign_in(VIEWER)
        good = session_cookie(h)
        assert good
        payload, _, signature = good.rpartition(".")
        h.http.cookies.set(SESSION_COOKIE, payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:],
                           domain="127.0.0.1", path="/console")
        forged = await h.http.get("/console")
        assert forged.status_code == 401 and "Sign in with Slack" in forged.text
        # A session signed with another deployment's secret is no session here either.
        other = Cookies(Settings(_env_file=None, slack_client_id="x", slack_client_secret="y", slack_team_id="T0TEAM",
                                 console_session_secret="another-secret-of-at-least-32-chars!!"))
        _, foreign = other.new_session(APPROVER, "T0TEAM", "Dana")
        h.http.cookies.set(SESSION_COOKIE, foreign, domain="127.0.0.1", path="/console")
        assert (await h.http.get("/console")).status_code == 401


async def test_a_session_of_another_workspace_is_refused(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        mine = Cookies(h.container.settings)
        _, cookie = mine.new_session(APPROVER, "T0ELSEWHERE", "Dana")  # signed by us, but for another tenant
        h.http.cookies.set(SESSION_COOKIE, cookie, domain="127.0.0.1", path="/console")
        assert (await h.http.get("/console")).status_code == 401


async def test_state_mismatch_is_refused(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        started = await h.start_sign_in()
        back = await h.consent(started.headers["location"], APPROVER)
        parts = urlsplit(back)
        code = parse_qs(parts.query)["code"][0]
        answer = await h.http.get("/console/auth/callback", params={"code": code, "state": "attacker-state"})
        assert answer.status_code == 400 and "state mismatch" in answer.text
        assert session_cookie(h) is None


async def test_a_callback_without_the_browsers_sign_in_is_refused(make_settings: Callable[..., Any],
                                                                  clock: Any) -> None:
    """Login CSRF: an attacker's code and state, delivered to a browser that never started a sign-in."""
    async with console_harness(make_settings, clock) as h:
        started = await h.start_sign_in()
        back = await h.consent(started.headers["location"], STRANGER)
        h.http.cookies.clear()
        answer = await h.http.get(back.split("8000", 1)[1])
        assert answer.status_code == 400 and "not started from this browser" in answer.text
        assert session_cookie(h) is None


async def test_an_expired_code_is_refused(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        started = await h.start_sign_in()
        back = await h.consent(started.headers["location"], APPROVER)
        h.openid.expire_codes()
        answer = await h.http.get(back.split("8000", 1)[1])
        assert answer.status_code == 400 and "invalid_code" in answer.text
        assert session_cookie(h) is None


async def test_a_nonce_that_does_not_match_is_refused(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        h.openid.id_token_overrides["nonce"] = "a-replayed-token"
        answer = await h.sign_in(APPROVER)
        assert answer.status_code == 400 and "does not match" in answer.text
        assert session_cookie(h) is None


async def test_a_member_of_another_workspace_is_refused(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        answer = await h.sign_in(OUTSIDER)
        assert answer.status_code == 403 and "another Slack workspace" in answer.text
        assert session_cookie(h) is None


async def test_an_off_site_redirect_is_refused(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        for target in ("https://evil.example/console", "//evil.example/console", "/\\evil.example",
                       "/v1/approvals", "/console/../v1/approvals", "javascript:alert(1)",
                       "/console\r\nSet-Cookie: x=1"):
            answer = await h.http.get("/console/login", params={"next": target})
            assert answer.status_code == 400, target
            assert "another site" in answer.text and "location" not in answer.headers


def test_cookies_are_secure_except_on_plain_http_loopback() -> None:
    def cookies(url: str) -> Cookies:
        return Cookies(Settings(_env_file=None, slack_client_id="x", slack_client_secret="y", slack_team_id="T1",
                                console_session_secret=SESSION_SECRET, url=url))

    assert cookies("https://cheqpoint.example.com").secure
    assert cookies("http://cheqpoint.example.com").secure  # a browser then refuses it: never sent in clear
    assert not cookies("http://127.0.0.1:8000").secure
