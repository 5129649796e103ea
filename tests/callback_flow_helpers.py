"""Shared by the end-to-end callback tests: a receiver for the connection, and reading back what was delivered.

The fixtures are imported by the test modules under their function names and used by fixture name.
"""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from api.approvals.actors import Actor
from api.callbacks.events import JOB_KIND
from api.callbacks.models import CallbackAttempt, CallbackDelivery
from api.main import build_container, create_app, running
from api.outbox.models import Job
from tests.conftest import REFUND, TEST_APPROVERS
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.groups import StaticGroups

OPS = Actor("operator", "UOPS", "ops")
BOB = Actor("operator", "UBOB", "bob")
POLICIES = Path(__file__).parent / "policies"


@pytest.fixture(name="receiver")
def receiver_fixture(connection) -> CallbackReceiver:
    return CallbackReceiver(connection["secret"])


@pytest.fixture(name="hook_url")
def hook_url_fixture(receiver) -> str:
    with serve(receiver.app) as base_url:
        yield f"{base_url}/hooks/cheqpoint"


async def create(client, auth, hook_url, *, expect=(200, 202), **extra) -> dict:
    # execute: false unless a test says otherwise, so a decision is the only event that calls back.
    body = {**REFUND, "callbackUrl": hook_url, "execute": False, **extra}
    response = await client.post("/v1/approvals", json=body, headers=auth)
    assert response.status_code in expect, response.text
    return response.json()


async def deliveries(container, approval_id: str | None = None) -> list[CallbackDelivery]:
    query = select(CallbackDelivery).order_by(CallbackDelivery.created_at)
    if approval_id:
        query = query.where(CallbackDelivery.approval_id == approval_id)
    async with container.db.read() as session:
        return list((await session.scalars(query)).all())


async def attempts(container, delivery_id: str) -> list[CallbackAttempt]:
    async with container.db.read() as session:
        query = select(CallbackAttempt).where(CallbackAttempt.delivery_id == delivery_id).order_by(CallbackAttempt.id)
        return list((await session.scalars(query)).all())


async def callback_jobs(container) -> list[Job]:
    async with container.db.read() as session:
        return list((await session.scalars(select(Job).where(Job.kind == JOB_KIND).order_by(Job.id))).all())


async def run_retries(container, clock, *, rounds: int = 40) -> None:
    """Run what is due; while a callback job waits for a later attempt, move the clock to it."""
    for _ in range(rounds):
        await container.worker.drain()
        waiting = [job for job in await callback_jobs(container) if job.status == "queued"]
        if not waiting:
            return
        clock.now = max(clock.now, min(job.run_at for job in waiting))
    raise AssertionError("callback jobs still queued")


def verified(event, secret: str) -> dict:
    """Verify independently of the receiver, as an agent's endpoint would."""
    return Webhook(secret).verify(event.body, {k: v for k, v in event.headers.items() if k.startswith("webhook-")})


@contextlib.asynccontextmanager
async def service(make_settings, clock, **values) -> AsyncIterator[tuple]:
    """The app with other settings than the fixture's (a policy file, Stripe, SSRF checks on)."""
    container = build_container(make_settings(**values), clock=clock)
    container.authority.groups = StaticGroups({"S0FINANCE": TEST_APPROVERS})  # the policy's approver group
    async with running(container, worker=False):
        transport = httpx.ASGITransport(app=create_app(container.settings, container=container))
        async with httpx.AsyncClient(transport=transport, base_url="http://cheqpoint.test") as client:
            yield container, client


async def new_connection(container) -> dict[str, str]:
    from api.connections import service as connections

    created = await container.db.write(lambda session: connections.create(session, "agent"))
    return {"key": created.key, "secret": created.connection.webhook_secret,
            "auth": {"Authorization": f"Bearer {created.key}"}}
