"""Driving the Slack side over the real wire: signed requests into `/slack/events`, shaped like
Slack's `block_actions`, `view_submission` and `event_callback` payloads, against the app whose
Web API calls go to a FakeSlack on a real port.
"""

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from api.audit.models import AuditEvent
from api.connections import service as connections
from api.db import Database
from api.main import Container, build_container, create_app, running
from api.surfaces.installed import INSTALLED, InstalledSurface
from bot.ids import review_actions_block_id
from bot.models import SlackMessage
from bot.wiring import slack_of
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-test"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
REVIEW, ALERTS = FakeSlack.REVIEW_CHANNEL, FakeSlack.ALERTS_CHANNEL
APPROVER, GROUP, GROUP_MEMBER, STRANGER = "UAPPROVER", "S0FINANCE", "UFINANCE1", "USTRANGER"
TEAM = {"id": "T0TEAM", "domain": "fake"}

PAYOUT = {"action": "create_payout", "summary": "Weekly payout to the operating account",
          "details": {"amount_cents": 50000, "currency": "usd", "method": "standard"}, "execute": False}

_counter = itertools.count(1)


def signature_headers(body: bytes, *, secret: str = SECRET, timestamp: float | None = None,
                      content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    """Slack's v0 signature: HMAC-SHA256 of `v0:{timestamp}:{body}` keyed with the signing secret."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


def interactivity_body(payload: dict[str, Any]) -> bytes:
    """Interactivity arrives as a form with one field, `payload`, holding the JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def slack_user(user_id: str) -> dict[str, Any]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM["id"]}


def trigger_id() -> str:
    return f"{next(_counter)}.1234567890.trigger{next(_counter)}"


def block_actions(action_id: str, value: str, block_id: str, *, user: str, channel: str | None = REVIEW,
                  message_ts: str | None = None, home_view_id: str | None = None) -> dict[str, Any]:
    """A button click on a message in `channel`, or (with `home_view_id`) in App Home."""
    payload: dict[str, Any] = {
        "type": "block_actions", "team": TEAM, "user": slack_user(user), "api_app_id": "A0APP",
        "token": "legacy-verification-token", "trigger_id": trigger_id(),
        "actions": [{"type": "button", "action_id": action_id, "block_id": block_id, "value": value,
                     "action_ts": f"{time.time():.6f}", "text": {"type": "plain_text", "text": action_id}}],
    }
    if home_view_id is not None:
        payload["container"] = {"type": "view", "view_id": home_view_id}
        payload["view"] = {"id": home_view_id, "type": "home", "team_id": TEAM["id"]}
    else:
        payload["container"] = {"type": "message", "message_ts": message_ts, "channel_id": channel,
                                "is_ephemeral": False}
        payload["channel"] = {"id": channel, "name": "review"}
        payload["message"] = {"type": "message", "ts": message_ts, "user": "U0BOT", "bot_id": "B0BOT"}
        payload["response_url"] = "https://hooks.slack.com/actions/T0TEAM/1/fake"
    return payload


def view_submission(view: dict[str, Any], values: dict[str, Any], *, user: str) -> dict[str, Any]:
    return {"type": "view_submission", "team": TEAM, "user": slack_user(user), "api_app_id": "A0APP",
            "token": "legacy-verification-token", "trigger_id": trigger_id(),
            "view": {**view, "state": {"values": values}}}


def text_input(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def select_input(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value, "text": {"type": "plain_text", "text": value}}}


def event_callback(event: dict[str, Any]) -> dict[str, Any]:
    return {"token": "legacy-verification-token", "team_id": TEAM["id"], "api_app_id": "A0APP", "event": event,
            "type": "event_callback", "event_id": f"Ev{next(_counter):08d}", "event_time": int(time.time())}


async def review_message(db: Database, approval_id: str) -> tuple[str, str] | None:
    """(channel, ts) of the request's own review message, from the Slack adapter's table."""
    async with db.read() as session:
        message = await session.get(SlackMessage, approval_id)
        return (message.channel, message.ts) if message is not None else None


@dataclass
class SlackHarness:
    fake: FakeSlack
    container: Container
    http: httpx.AsyncClient
    auth: dict[str, str]

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post("/v1/approvals", json=body, headers=self.auth)
        assert response.status_code in (200, 202), response.text
        return response.json()

    async def approval(self, approval_id: str) -> dict[str, Any]:
        return (await self.http.get(f"/v1/approvals/{approval_id}", headers=self.auth)).json()

    async def audit(self, event: str) -> list[AuditEvent]:
        async with self.container.db.read() as session:
            return list((await session.scalars(select(AuditEvent).where(AuditEvent.event == event))).all())

    async def settle(self) -> None:
        """Run due outbox jobs and wait for listeners still working after their ack."""
        await slack_of(self.container).inflight.idle()
        await self.container.worker.drain()

    async def send(self, body: bytes, content_type: str = "application/x-www-form-urlencoded",
                   **signing: Any) -> httpx.Response:
        headers = signature_headers(body, content_type=content_type, **signing)
        response = await self.http.post("/slack/events", content=body, headers=headers)
        await slack_of(self.container).inflight.idle()
        return response

    async def location(self, approval_id: str) -> tuple[str, str]:
        found = await review_message(self.container.db, approval_id)
        assert found is not None, "the review message was not posted"
        return found

    async def message(self, approval_id: str) -> dict[str, Any]:
        channel, ts = await self.location(approval_id)
        return self.fake.message(channel, ts)

    async def click(self, action_id: str, approval_id: str, *, user: str = APPROVER) -> httpx.Response:
        """Click the button as it is on the posted message (its value carries the version shown)."""
        channel, ts = await self.location(approval_id)
        value = button_value(self.fake.message(channel, ts)["blocks"], approval_id, action_id)
        payload = block_actions(action_id, value, review_actions_block_id(approval_id), user=user,
                                channel=channel, message_ts=ts)
        return await self.send(interactivity_body(payload))

    async def submit(self, view: dict[str, Any], values: dict[str, Any], *, user: str = APPROVER) -> httpx.Response:
        return await self.send(interactivity_body(view_submission(view, values, user=user)))

    def last_view(self) -> dict[str, Any]:
        return self.fake.calls_to("views.open")[-1]["view"]

    def ephemerals_to(self, user: str) -> list[str]:
        return [e["text"] for e in self.fake.ephemerals if e["user"] == user]


async def eventually(check: Callable[[], Any]) -> Any:
    """For event listeners, which Bolt starts after answering: wait (5 s at most) for `check()`."""
    for _ in range(500):
        if result := check():
            return result
        await asyncio.sleep(0.01)
    raise AssertionError("timed out waiting for an event listener's effect")


def button_value(blocks: list[dict[str, Any]], approval_id: str, action_id: str) -> str:
    block = next(b for b in blocks if b.get("block_id") == review_actions_block_id(approval_id))
    return next(e["value"] for e in block["elements"] if e["action_id"] == action_id)


def has_buttons(message: dict[str, Any]) -> bool:
    return any(block["type"] == "actions" for block in message["blocks"])


@contextlib.asynccontextmanager
async def slack_harness(make_settings: Callable[..., Any], clock: Any, *,
                        surfaces: Sequence[InstalledSurface] = INSTALLED,
                        **overrides: Any) -> AsyncIterator[SlackHarness]:
    fake = FakeSlack(token=TOKEN)
    fake.add_usergroup(GROUP, [GROUP_MEMBER])
    with fake.serving() as base_url:
        values = dict(slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=base_url,
                      review_channel=REVIEW, alerts_channel=ALERTS, approvers=[APPROVER, GROUP])
        settings = make_settings(**{**values, **overrides})
        container = build_container(settings, clock=clock, surfaces=surfaces)
        async with running(container, worker=False):
            app = create_app(settings, container=container)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cheqpoint.test") as http:
                created = await container.db.write(lambda session: connections.create(session, "support-agent"))
                yield SlackHarness(fake, container, http, {"Authorization": f"Bearer {created.key}"})
