"""Limits per Connection and atomic totals, through the real HTTP API (issue 10, items 2 and 6).

Each test performs the attack: a burst of concurrent requests against a limit, on one app and, on
PostgreSQL, on two app instances sharing one database.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REFUND
from tests.test_policy_flow import Running, serving

ONE_A_DAY = """
defaults:
  approvers: [U012ABCDEF]
rules:
  - name: first refund of the day
    actions: [issue_refund]
    when: totals.connection.refunds_24h_count < 1
    decision: approve
"""
ONE_PER_CUSTOMER = ONE_A_DAY.replace("totals.connection.refunds_24h_count", "totals.customer.refunds_24h_count")
DECIDE_ONLY = {**REFUND, "execute": False}


def policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


async def burst(services: list[Running], count: int, body: dict | None = None) -> list[httpx.Response]:
    """`count` requests at once, spread over the given instances."""
    return list(await asyncio.gather(*(
        services[i % len(services)].http.post("/v1/approvals", json=body or DECIDE_ONLY,
                                              headers=services[i % len(services)].auth)
        for i in range(count))))


def statuses(responses: list[httpx.Response]) -> list[str]:
    return [r.json().get("status", r.status_code) for r in responses]


@contextlib.asynccontextmanager
async def instances(settings, clock, count: int) -> AsyncIterator[list[Running]]:
    """`count` app instances on one database, one Connection shared by all."""
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(serving(settings, clock))
        others = [await stack.enter_async_context(serving(settings, clock, first.auth)) for _ in range(count - 1)]
        yield [first, *others]


# ---- item 2: totals read, evaluated and inserted atomically ------------------------------------------

@pytest.mark.parametrize("rule", [ONE_A_DAY, ONE_PER_CUSTOMER], ids=["connection", "customer"])
async def test_a_velocity_rule_lets_exactly_one_of_thirty_concurrent_requests_through(make_settings, clock,
                                                                                       tmp_path, rule):
    async with instances(make_settings(policy_file=policy(tmp_path, rule)), clock, 1) as services:
        responses = await burst(services, 30)
    assert all(r.status_code in (200, 202) for r in responses), [r.text for r in responses]
    assert statuses(responses).count("approved") == 1
    assert statuses(responses).count("pending") == 29


@pytest.mark.postgres
async def test_two_instances_on_one_database_let_exactly_one_through(make_settings, clock, tmp_path):
    async with instances(make_settings(policy_file=policy(tmp_path, ONE_A_DAY)), clock, 2) as services:
        responses = await burst(services, 30)
    assert statuses(responses).count("approved") == 1
    assert statuses(responses).count("pending") == 29


async def test_the_customer_scope_counts_other_connections_requests(make_settings, clock, tmp_path):
    from tests.test_policy_flow import connect

    async with serving(make_settings(policy_file=policy(tmp_path, ONE_PER_CUSTOMER)), clock) as first:
        second = Running(first.container, first.http, await connect(first.container, "billing-agent"))
        responses = await burst([first, second], 10)
    assert statuses(responses).count("approved") == 1


# ---- item 6: limits per Connection ------------------------------------------------------------------

async def test_requests_per_minute(make_settings, clock):
    async with instances(make_settings(limit_requests_per_minute=5), clock, 1) as services:
        responses = await burst(services, 12)
        refused = [r for r in responses if r.status_code == 429]
        assert len(refused) == 7 and sum(r.status_code == 202 for r in responses) == 5
        problem = refused[0]
        assert problem.headers["content-type"] == "application/problem+json"
        assert problem.json()["status"] == 429 and "5 requests a minute" in problem.json()["detail"]
        assert 1 <= int(problem.headers["Retry-After"]) <= 60

        (service,) = services
        compat = await service.http.post("/api/approvals/request", json=DECIDE_ONLY,
                                         headers={"x-api-key": service.auth["Authorization"].removeprefix("Bearer ")})
        assert compat.status_code == 429 and "requests a minute" in compat.json()["error"]
        assert "Retry-After" in compat.headers

        rows, _ = await service.container.approvals.list(None)
        assert len(rows) == 5  # nothing refused was stored
        clock.advance(seconds=61)
        assert (await service.http.post("/v1/approvals", json=DECIDE_ONLY, headers=service.auth)).status_code == 202


@pytest.mark.postgres
async def test_requests_per_minute_hold_across_two_instances(make_settings, clock):
    async with instances(make_settings(limit_requests_per_minute=5), clock, 2) as services:
        responses = await burst(services, 20)
    assert sum(r.status_code == 202 for r in responses) == 5
    assert sum(r.status_code == 429 for r in responses) == 15


async def test_pending_approvals(make_settings, clock):
    async with instances(make_settings(limit_pending=3), clock, 1) as (service,):
        responses = await burst([service], 8)
        assert sum(r.status_code == 202 for r in responses) == 3
        refused = next(r for r in responses if r.status_code == 429)
        assert "3 pending approvals" in refused.json()["detail"] and refused.headers["Retry-After"]

        pending = next(r.json()["approvalId"] for r in responses if r.status_code == 202)
        cancelled = await service.http.post(f"/v1/approvals/{pending}/cancel", headers=service.auth)
        assert cancelled.status_code == 200
        assert (await service.http.post("/v1/approvals", json=DECIDE_ONLY, headers=service.auth)).status_code == 202


async def test_pending_limit_does_not_stop_rule_decisions(make_settings, clock, tmp_path):
    rule = ONE_A_DAY.replace("totals.connection.refunds_24h_count < 1", "\"true\"")
    async with instances(make_settings(limit_pending=1, policy_file=policy(tmp_path, rule)), clock, 1) as (svc,):
        responses = await burst([svc], 3)
    assert statuses(responses) == ["approved"] * 3


async def test_lookups_per_minute(make_settings, clock):
    lookup = {"action": "retrieve_balance", "summary": "Balance", "details": {}}
    async with instances(make_settings(limit_lookups_per_minute=2), clock, 1) as (service,):
        answers = [await service.http.post("/v1/approvals", json=lookup, headers=service.auth) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert "2 lookups a minute" in answers[2].json()["detail"]
        # Writes are not lookups: they still go through.
        assert (await service.http.post("/v1/approvals", json=DECIDE_ONLY, headers=service.auth)).status_code == 202


async def _hold(service: Running, approval_id: str, wait_ms: int = 3000) -> httpx.Response:
    return await service.http.get(f"/v1/approvals/{approval_id}", params={"waitMs": wait_ms}, headers=service.auth)


async def _held_open(services: list[Running], approval_id: str, count: int) -> list[asyncio.Task[httpx.Response]]:
    tasks = [asyncio.create_task(_hold(services[i % len(services)], approval_id)) for i in range(count)]
    await asyncio.sleep(0.5)  # they are holding now
    return tasks


async def test_holds(make_settings, clock):
    async with instances(make_settings(limit_holds=2), clock, 1) as (service,):
        approval_id = (await service.post(DECIDE_ONLY, 202))["approvalId"]
        holding = await _held_open([service], approval_id, 2)
        third = await _hold(service, approval_id)
        assert third.status_code == 429 and "2 requests held open" in third.json()["detail"]
        assert 1 <= int(third.headers["Retry-After"]) <= 10

        sync = await service.http.post("/v1/approvals", json={**DECIDE_ONLY, "timeoutMs": 1000}, headers=service.auth)
        assert sync.status_code == 429
        key = service.auth["Authorization"].removeprefix("Bearer ")
        compat = await service.http.post("/api/webhooks/inbound", json={**DECIDE_ONLY, "maxWaitMs": 1000},
                                         headers={"x-api-key": key})
        assert compat.status_code == 429 and "held open" in compat.json()["error"] and compat.headers["Retry-After"]
        rows, _ = await service.container.approvals.list(None)
        assert len(rows) == 1  # the refused synchronous requests stored nothing

        await asyncio.gather(*holding)
        assert (await _hold(service, approval_id, 10)).status_code == 200  # the slots were given back
        assert (await service.get(approval_id))["status"] == "pending"  # a plain read takes no slot


@pytest.mark.postgres
async def test_holds_across_two_instances(make_settings, clock):
    async with instances(make_settings(limit_holds=2), clock, 2) as services:
        approval_id = (await services[0].post(DECIDE_ONLY, 202))["approvalId"]
        holding = await _held_open(services, approval_id, 2)
        assert (await _hold(services[0], approval_id)).status_code == 429
        assert (await _hold(services[1], approval_id)).status_code == 429
        await asyncio.gather(*holding)



async def test_a_cancelled_hold_gives_its_slot_back(make_settings, clock):
    async with instances(make_settings(limit_holds=1), clock, 1) as (service,):
        approval_id = (await service.post(DECIDE_ONLY, 202))["approvalId"]
        holding = asyncio.create_task(_hold(service, approval_id, 30_000))
        await asyncio.sleep(0.5)
        assert (await _hold(service, approval_id, 10)).status_code == 429
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holding
        await asyncio.sleep(0.2)
        assert (await _hold(service, approval_id, 10)).status_code == 200
