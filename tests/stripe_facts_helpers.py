"""The service with Stripe configured against the fake, as the Stripe-facts tests drive it: requests
over HTTP, the worker drained by hand, a policy written for the test."""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from api.approvals.models import Approval
from api.config import Settings
from api.connections import service as connections
from api.main import Container, build_container, create_app, running
from tests.conftest import Clock
from tests.fakes.stripe import FakeStripe

CUSTOMER = "cus_QaAbCdEfGhIjK"  # the fake's default customer of a charge


@dataclass
class Service:
    container: Container
    http: httpx.AsyncClient
    auth: dict[str, str]
    fake: FakeStripe

    async def post(self, action: str, details: dict[str, Any], **extra: Any) -> httpx.Response:
        body = {"action": action, "summary": f"{action} by the support agent", "details": details, **extra}
        return await self.http.post("/v1/approvals", json=body, headers=self.auth)

    async def accepted(self, action: str, details: dict[str, Any], **extra: Any) -> dict[str, Any]:
        response = await self.post(action, details, **extra)
        assert response.status_code in (200, 202), response.text
        return response.json()

    async def expect_refused(self, action: str, details: dict[str, Any], field: str) -> dict[str, Any]:
        """A 422 whose errors locate `details.<field>`, with nothing stored."""
        before = await self.count()
        response = await self.post(action, details)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert ["details", *field.split(".")] in [[str(p) for p in e["loc"]] for e in problem["errors"]], problem
        assert await self.count() == before
        return problem

    async def get(self, approval_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/approvals/{approval_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    async def count(self) -> int:
        async with self.container.db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(Approval)))


def write_policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text("defaults:\n  approvers: [U012ABCDEF]\nrules:\n" + text)
    return str(path)


@contextlib.asynccontextmanager
async def stripe_service(make_settings: Callable[..., Settings], clock: Clock, fake: FakeStripe, *,
                         key: str = "sk_test_cheqpoint", **settings: Any) -> AsyncIterator[Service]:
    built = build_container(make_settings(stripe_secret_key=key, stripe_api_base=fake.url, **settings),
                            clock=clock)
    async with running(built, worker=False):
        app = create_app(built.settings, container=built)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cheqpoint.test") as http:
            created = await built.db.write(lambda session: connections.create(session, "support-agent"))
            yield Service(built, http, {"Authorization": f"Bearer {created.key}"}, fake)
