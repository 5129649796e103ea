"""Running totals under concurrency on PostgreSQL: two replicas (each its own engine and pool) change
the same counters at once — intakes that take no lock (the policy reads no totals), decisions, a
revocation cancelling many approvals in one transaction — and no change is lost or counted twice,
and no transaction deadlocks (the counters are written at commit, in one sorted order)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.approvals.actors import Actor
from api.approvals.models import Approval
from api.connections import service as connections
from api.connections.models import Connection
from api.main import Container, build_container, create_app, running
from api.policy.usage import compute_totals
from api.usage.read import running_totals
from tests.conftest import REFUND

pytestmark = pytest.mark.postgres

OPS = Actor("operator", "UOPS", "ops")
CUSTOMER = REFUND["details"]["customer_id"]
EACH = 25


@contextlib.asynccontextmanager
async def replica(settings: Any, clock: Any, name: str) -> AsyncIterator[tuple[Container, httpx.AsyncClient]]:
    container = build_container(settings, clock=clock)
    async with running(container, worker=False):
        transport = httpx.ASGITransport(app=create_app(settings, container=container))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}.test") as http:
            yield container, http


async def agent(container: Container, name: str) -> tuple[str, dict[str, str]]:
    created = await container.db.write(lambda session: connections.create(session, name))
    return created.connection.id, {"Authorization": f"Bearer {created.key}"}


async def refund(http: httpx.AsyncClient, auth: dict[str, str], amount: int) -> str:
    body = {**REFUND, "details": {**REFUND["details"], "amount_cents": amount}}
    response = await http.post("/v1/approvals", json=body, headers=auth)
    assert response.status_code == 202, response.text
    return response.json()["approvalId"]


async def both_ways(container: Container, connection_id: str | None) -> tuple[Any, Any]:
    """(running, exact) totals of a refund request by `connection_id` for the shared customer."""
    async with container.db.read() as session:
        connection = await session.scalar(select(Connection).where(Connection.id == connection_id))
        details = {"currency": "usd", "customer_id": CUSTOMER}
        now = container.clock()
        return (await running_totals(session, connection, "issue_refund", details, now),
                await compute_totals(session, connection, "issue_refund", details, now))


async def test_two_replicas_changing_the_same_counters_at_once_lose_nothing(make_settings, clock):
    settings = make_settings()  # the built-in policy reads no totals: intakes take no lock at all
    async with replica(settings, clock, "one") as (one, http_one), replica(settings, clock, "two") as (two, http_two):
        first, auth_one = await agent(one, "agent-one")
        second, auth_two = await agent(two, "agent-two")

        # Both replicas add to the same customer's counters (and each to its Connection's) at once.
        created = await asyncio.gather(*(refund(http, auth, 1000 + i)
                                         for i in range(EACH) for http, auth in ((http_one, auth_one),
                                                                                 (http_two, auth_two))))
        running_now, exact = await both_ways(one, first)
        assert running_now == exact
        assert (running_now.customer.refunds_24h_count, running_now.customer.refunds_24h_cents) == (
            2 * EACH, 2 * sum(1000 + i for i in range(EACH)))

        # Then at once: half the requests rejected on one replica and half on the other, more intakes
        # on both, and the first Connection revoked (its pending requests cancelled in one transaction).
        rejected, kept = created[0::3], created[1::3]  # of both Connections
        work = [*(replica_.decisions.decide(approval_id, OPS, "reject", note="no")
                  for n, approval_id in enumerate(rejected) for replica_ in ((one, two)[n % 2],)),
                *(replica_.decisions.decide(approval_id, OPS, "approve")
                  for n, approval_id in enumerate(kept) for replica_ in ((two, one)[n % 2],)),
                *(refund(http_two, auth_two, 500 + i) for i in range(EACH)),
                two.db.write(lambda session: connections.revoke(session, first, effects=two.effects))]
        await asyncio.gather(*work)

        for connection_id in (first, second):
            running_now, exact = await both_ways(two, connection_id)
            assert running_now == exact, connection_id
        async with one.db.read() as session:
            statuses = (await session.execute(select(Approval.connection_id, Approval.status))).all()
        assert ("pending" not in {status for connection_id, status in statuses if connection_id == first})
        counted = [connection_id for connection_id, status in statuses if status in ("pending", "approved")]
        assert running_now.customer.refunds_24h_count == len(counted) > EACH
