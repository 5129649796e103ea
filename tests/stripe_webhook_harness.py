"""The whole service with Stripe (fake), callbacks (a real receiver) and, when asked, Slack (fake), for
the Stripe webhook tests: executions really run first, then Stripe's events arrive signed over HTTP."""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from api.approvals.actors import Actor
from api.audit.models import AuditEvent
from api.callbacks.models import CallbackDelivery
from api.connections import service as connections
from api.main import Container, build_container, create_app, running
from api.stripe_webhooks.models import StripeEvent
from tests.fakes.receiver import CallbackReceiver, Event
from tests.fakes.server import serve
from tests.fakes.slack import FakeSlack
from tests.fakes.stripe import FakeStripe
from tests.fakes.stripe_events import signed
from tests.slack_helpers import ALERTS, APPROVER, GROUP, REVIEW, SECRET, TOKEN

WEBHOOK_SECRET = "whsec_test_5Qd1bN0tAR3alS3cr3t"
OPS = Actor("operator", "UOPS", "ops")


@dataclass
class Harness:
    container: Container
    http: httpx.AsyncClient
    stripe: FakeStripe
    receiver: CallbackReceiver
    hook_url: str
    auth: dict[str, str]
    slack: FakeSlack | None

    async def deliver(self, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET,
                      timestamp: int | None = None) -> httpx.Response:
        body, headers = signed(event, secret, timestamp=timestamp)
        return await self.http.post("/stripe/webhook", content=body, headers=headers)

    async def request(self, action: str, details: dict[str, Any]) -> str:
        body = {"action": action, "summary": f"{action} for the webhook tests", "details": details,
                "callbackUrl": self.hook_url}
        response = await self.http.post("/v1/approvals", json=body, headers=self.auth)
        assert response.status_code == 202, response.text
        return response.json()["approvalId"]

    async def execute(self, action: str, details: dict[str, Any]) -> dict[str, Any]:
        """A request approved by an operator and run against the fake Stripe; the approval as the agent reads it."""
        approval_id = await self.request(action, details)
        await self.container.worker.drain()
        result = await self.container.decisions.decide(approval_id, OPS, "approve")
        assert result.outcome == "decided"
        await self.container.worker.drain()
        approval = await self.approval(approval_id)
        assert approval["execution"]["status"] == "succeeded", approval["execution"]
        return approval

    async def refund(self) -> dict[str, Any]:
        charge = self.stripe.add_charge(amount=34900, currency="usd")
        return await self.execute("issue_refund", {"charge_id": charge["id"], "amount_cents": 34900,
                                                   "currency": "usd", "reason": "duplicate"})

    async def approval(self, approval_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/approvals/{approval_id}", headers=self.auth)
        assert response.status_code == 200
        return response.json()

    def callbacks(self, event_type: str) -> list[Event]:
        return [e for e in self.receiver.events if e.payload["type"] == event_type]

    async def count(self, model: Any, *criteria: Any) -> int:
        async with self.container.db.read() as session:
            return await session.scalar(select(func.count()).select_from(model).where(*criteria))

    async def recorded(self) -> list[StripeEvent]:
        async with self.container.db.read() as session:
            return list((await session.scalars(select(StripeEvent).order_by(StripeEvent.received_at))).all())

    async def updates_audited(self, approval_id: str) -> list[AuditEvent]:
        async with self.container.db.read() as session:
            return list((await session.scalars(select(AuditEvent).where(
                AuditEvent.event == "execution.updated", AuditEvent.approval_id == approval_id))).all())

    async def deliveries(self, event_type: str) -> int:
        return await self.count(CallbackDelivery, CallbackDelivery.event_type == event_type)


@contextlib.asynccontextmanager
async def harness(make_settings: Callable[..., Any], clock: Any, *, with_slack: bool = False,
                  **overrides: Any) -> AsyncIterator[Harness]:
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(FakeStripe())
        values: dict[str, Any] = dict(stripe_secret_key="sk_test_cheqpoint", stripe_api_base=fake.url,
                                      stripe_webhook_secret=WEBHOOK_SECRET)
        slack = None
        if with_slack:
            slack = FakeSlack(token=TOKEN)
            slack_url = stack.enter_context(slack.serving())
            values.update(slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=slack_url,
                          review_channel=REVIEW, alerts_channel=ALERTS, approvers=[APPROVER, GROUP])
        container = build_container(make_settings(**{**values, **overrides}), clock=clock)
        async with running(container, worker=False):
            created = await container.db.write(lambda session: connections.create(session, "billing-agent"))
            receiver = CallbackReceiver(created.connection.webhook_secret)
            base_url = stack.enter_context(serve(receiver.app))
            transport = httpx.ASGITransport(app=create_app(container.settings, container=container))
            async with httpx.AsyncClient(transport=transport, base_url="http://cheqpoint.test") as http:
                yield Harness(container, http, fake, receiver, f"{base_url}/hooks/cheqpoint",
                              {"Authorization": f"Bearer {created.key}"}, slack)
