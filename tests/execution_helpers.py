"""Shared by the execution tests: the fake Stripe API, the service configured for it, its API client,
an agent's credentials, and submitting, deciding and reading back requests."""

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from api.approvals.actors import Actor
from api.config import Settings
from api.connections import service as connections
from api.main import Container, build_container, create_app, running
from tests.conftest import Clock
from tests.fakes.stripe import FakeStripe

OPS = Actor("operator", "UOPS", "ops")
WRITES = ("POST", "DELETE")


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def stripe_container(make_settings: Callable[..., Settings], clock: Clock,
                           fake: FakeStripe) -> AsyncIterator[Container]:
    """The whole service with Stripe configured against the fake; its worker is driven by hand."""
    settings = make_settings(stripe_secret_key="sk_test_cheqpoint", stripe_api_base=fake.url)
    built = build_container(settings, clock=clock)
    async with running(built, worker=False):
        yield built


@pytest.fixture
async def api(stripe_container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(stripe_container.settings, container=stripe_container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cheqpoint.test") as http:
        yield http


@pytest.fixture
async def agent(stripe_container: Container) -> dict[str, str]:
    created = await stripe_container.db.write(lambda session: connections.create(session, "billing-agent"))
    return {"Authorization": f"Bearer {created.key}"}


def writes(fake: FakeStripe) -> list[tuple[str, str]]:
    """What was sent to Stripe that changes something (verification only reads)."""
    return [(r.method, r.path) for r in fake.requests if r.method in WRITES]


async def submit(api: httpx.AsyncClient, agent: dict[str, str], action: str, details: dict[str, Any],
                 **extra: Any) -> httpx.Response:
    body = {"action": action, "summary": f"{action} requested by the billing agent", "details": details, **extra}
    return await api.post("/v1/approvals", json=body, headers=agent)


async def request(api: httpx.AsyncClient, agent: dict[str, str], action: str, details: dict[str, Any],
                  **extra: Any) -> str:
    """A request that waits for review; its id."""
    response = await submit(api, agent, action, details, **extra)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    return response.json()["approvalId"]


async def approve_and_execute(api: httpx.AsyncClient, agent: dict[str, str], container: Container,
                              approval_id: str, edits: dict[str, Any] | None = None) -> dict[str, Any]:
    """An operator approves (with edits), the worker runs what is due; the approval as the agent reads it."""
    result = await container.decisions.decide(approval_id, OPS, "approve", edits=edits)
    assert result.outcome == "decided"
    await container.worker.drain()
    response = await api.get(f"/v1/approvals/{approval_id}", headers=agent)
    assert response.status_code == 200
    return response.json()


def only_write(fake: FakeStripe) -> Any:
    """The one write the fake received, checked to carry the approval's idempotency key."""
    writes = [r for r in fake.requests if r.method in WRITES]
    assert len(writes) == 1, [(r.method, r.path) for r in writes]
    return writes[0]


def succeeded(body: dict[str, Any], object_id: str) -> dict[str, Any]:
    execution = body["execution"]
    assert body["status"] == "approved"
    assert execution["status"] == "succeeded", execution
    assert execution["error"] is None
    assert execution["stripeObjectId"] == object_id
    assert execution["result"]["id"] == object_id
    return execution["result"]
