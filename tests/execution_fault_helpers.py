"""Shared by the execution fault tests: a refund request, reading back its job, attempts and audit
events, and stopping a worker at the worst moment."""

import asyncio

import pytest
from sqlalchemy import select

from api.audit.models import AuditEvent
from api.outbox.models import Job, JobAttempt
from tests.conftest import REFUND
from tests.execution_helpers import request
from tests.fakes.stripe import FakeStripe

# Stripe's SDK in the service retries 5xx twice itself (same key) before the worker sees a failure.
SDK_TRIES = 3


async def refund_request(api, agent, fake: FakeStripe, amount: int = 34900, **details) -> tuple[str, str]:
    charge = fake.add_charge(amount=amount)
    approval_id = await request(api, agent, "issue_refund", {**REFUND["details"], "charge_id": charge["id"],
                                                             "amount_cents": amount, **details})
    return approval_id, charge["id"]


async def read(api, agent, approval_id: str) -> dict:
    response = await api.get(f"/v1/approvals/{approval_id}", headers=agent)
    assert response.status_code == 200
    return response.json()


async def job_of(container, approval_id: str) -> Job:
    async with container.db.read() as session:
        return await session.scalar(select(Job).where(Job.key == f"execute:{approval_id}"))


async def attempts_of(container, job_id: str) -> list[JobAttempt]:
    async with container.db.read() as session:
        query = select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.attempt)
        return list((await session.scalars(query)).all())


async def execution_events(container, approval_id: str) -> list[str]:
    async with container.db.read() as session:
        query = select(AuditEvent.event).where(AuditEvent.approval_id == approval_id,
                                              AuditEvent.event.like("execution.%")).order_by(AuditEvent.id)
        return list((await session.scalars(query)).all())


def refund_posts(fake: FakeStripe):
    return fake.requests_to("POST", "/v1/refunds")


async def until(condition, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def kill_after_stripe_acted(container, stripe_has_acted) -> None:
    """Run the worker until Stripe has carried out the call, then kill it before it can record the
    answer: Stripe answers slowly, and the worker task is cancelled while it waits."""
    worker = asyncio.create_task(container.worker.run_once())
    await until(stripe_has_acted)
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker
