"""Driving the console over the real wire: the app with Slack and Sign in with Slack configured
against the fake Slack (Web API and OpenID endpoints on one real port), and a sign-in that walks
the whole OpenID Connect flow as a browser would."""

import contextlib
import html
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx

from api.connections import service as connections
from api.main import Container, build_container, create_app, running
from bot.wiring import slack_of
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_openid import AUTHORIZE_PATH, FakeSlackOpenID
from tests.slack_helpers import ALERTS, APPROVER, GROUP, GROUP_MEMBER, REVIEW, SECRET, TOKEN

CLIENT_ID, CLIENT_SECRET = "1234.5678", "client-secret-of-the-console"
SESSION_SECRET = "a-session-secret-of-at-least-32-characters"
CONSOLE_URL = "http://127.0.0.1:8000"
VIEWER, AUDIT_GROUP, AUDITOR, STRANGER = "UVIEWER", "S0AUDIT", "UAUDITOR", "USTRANGER"
OUTSIDER = "UOUTSIDER"  # a member of another Slack workspace
PEOPLE = {APPROVER: "Dana Reviewer", GROUP_MEMBER: "Fin Member", VIEWER: "Vic Viewer", AUDITOR: "Ada Auditor",
          STRANGER: "Sam Stranger"}


def console_values(slack_url: str, base: str) -> dict[str, Any]:
    return dict(slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=f"{slack_url}/api/",
                review_channel=REVIEW, alerts_channel=ALERTS, approvers=[APPROVER, GROUP],
                slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET, console_session_secret=SESSION_SECRET,
                slack_oauth_url=f"{slack_url}{AUTHORIZE_PATH}", viewers=[VIEWER, AUDIT_GROUP], url=base)


def fakes() -> tuple[FakeSlack, FakeSlackOpenID]:
    fake = FakeSlack(token=TOKEN)
    fake.add_usergroup(GROUP, [GROUP_MEMBER])
    fake.add_usergroup(AUDIT_GROUP, [AUDITOR])
    openid = FakeSlackOpenID(CLIENT_ID, CLIENT_SECRET, team_id=fake.team_id)
    for user, name in PEOPLE.items():
        openid.add_user(user, name)
    openid.add_user(OUTSIDER, "Otto Outsider", team_id="T0ELSEWHERE")
    return fake, openid


@dataclass
class ConsoleHarness:
    fake: FakeSlack
    openid: FakeSlackOpenID
    container: Container
    http: httpx.AsyncClient  # the console's browser: keeps cookies
    auth: dict[str, str]
    secret: str  # the Connection's webhook secret, for callback receivers

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post("/v1/approvals", json=body, headers=self.auth)
        assert response.status_code in (200, 202), response.text
        return response.json()

    async def approval(self, approval_id: str) -> dict[str, Any]:
        return (await self.http.get(f"/v1/approvals/{approval_id}", headers=self.auth)).json()

    async def start_sign_in(self, next_path: str = "/console") -> httpx.Response:
        """The console's redirect to Slack's authorize page."""
        return await self.http.get("/console/login", params={"next": next_path})

    async def consent(self, authorize_url: str, user: str) -> str:
        """At Slack: the authorize page, then "Continue as …"; returns where Slack sends the browser back."""
        async with httpx.AsyncClient() as slack:
            page = await slack.get(authorize_url)
            assert page.status_code == 200, page.text
            form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
            answer = await slack.post(authorize_url.split("?")[0], data={**_unescape(form), "user": user})
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    async def sign_in(self, user: str, next_path: str = "/console") -> httpx.Response:
        """The whole flow; returns the console's answer to Slack's redirect back."""
        started = await self.start_sign_in(next_path)
        assert started.status_code == 303, started.text
        back = await self.consent(started.headers["location"], user)
        return await self.http.get(_local(back))

    async def settle(self) -> None:
        await slack_of(self.container).inflight.idle()
        await self.container.worker.drain()

    async def page(self, path: str) -> tuple[httpx.Response, dict[str, str]]:
        """A console page and the hidden fields of its first form that posts to `…/decide` (or any form)."""
        response = await self.http.get(path)
        return response, hidden_fields(response.text)


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _unescape(form: dict[str, str]) -> dict[str, str]:
    return {html.unescape(k): html.unescape(v) for k, v in form.items()}


class _Hidden(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name") not in self.fields:
            self.fields[values["name"] or ""] = values.get("value") or ""


def hidden_fields(text: str) -> dict[str, str]:
    parser = _Hidden()
    parser.feed(text)
    return parser.fields


@contextlib.asynccontextmanager
async def console_harness(make_settings: Callable[..., Any], clock: Any,
                          **overrides: Any) -> AsyncIterator[ConsoleHarness]:
    fake, openid = fakes()
    with openid.serving(fake) as slack_url:
        settings = make_settings(**{**console_values(slack_url, CONSOLE_URL), **overrides})
        container = build_container(settings, clock=clock)
        async with running(container, worker=False):
            app = create_app(settings, container=container)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=CONSOLE_URL) as http:
                created = await container.db.write(lambda session: connections.create(session, "support-agent"))
                yield ConsoleHarness(fake, openid, container, http, {"Authorization": f"Bearer {created.key}"},
                                     created.connection.webhook_secret)
