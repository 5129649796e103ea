"""The policy at run time, over HTTP through the app: CONTRACT §6 end to end, velocity limits,
expiry across a restart, cancellation, and a bad policy file refusing start-up."""

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.approvals.actors import Actor
from api.approvals.schemas import ApprovalCreate
from api.approvals.service import ApprovalService, Intake
from api.audit.models import AuditEvent
from api.config import Settings
from api.connections import service as connections
from api.main import Container, build_container, create_app, running
from api.policy import PolicyError, load_policy
from api.policy.usage import compute_totals
from tests.conftest import REFUND, TEST_APPROVERS, Clock
from tests.groups import StaticGroups

POLICIES = Path(__file__).parent / "policies"
EXAMPLE = POLICIES / "contract_example.yaml"
VELOCITY = POLICIES / "velocity.yaml"
ALICE = Actor("operator", "UALICE", "Alice")
BOB = Actor("operator", "UBOB", "Bob")


@dataclass
class Running:
    """One service process as a test sees it: the container, an HTTP client and one agent's auth."""

    container: Container
    http: httpx.AsyncClient
    auth: dict[str, str]
    events: list[tuple[str, str]] = field(default_factory=list)  # (approval id, effect) as subscribers see them

    async def post(self, body: dict[str, Any], status: int | None = None) -> dict[str, Any]:
        response = await self.http.post("/v1/approvals", json=body, headers=self.auth)
        if status is not None:
            assert response.status_code == status, response.text
        return response.json()

    async def get(self, approval_id: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(f"/v1/approvals/{approval_id}", params=params, headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()


async def connect(container: Container, name: str = "support-agent") -> dict[str, str]:
    created = await container.db.write(lambda session: connections.create(session, name))
    return {"Authorization": f"Bearer {created.key}"}


@contextlib.asynccontextmanager
async def serving(settings: Settings, clock: Clock, auth: dict[str, str] | None = None) -> AsyncIterator[Running]:
    """Start a fresh service on `settings` (its worker stopped: tests drain it), and stop it after."""
    container = build_container(settings, clock=clock)
    container.authority.groups = StaticGroups({"S0FINANCE": TEST_APPROVERS})  # the policy's approver group
    events: list[tuple[str, str]] = []

    async def record(session: Any, approval: Any, event: str) -> None:
        events.append((approval.id, event))

    container.effects.subscribe(record)  # where Slack, callbacks and alerts subscribe
    async with running(container, worker=False):
        transport = httpx.ASGITransport(app=create_app(settings, container=container))
        async with httpx.AsyncClient(transport=transport, base_url="http://cheqpoint.test") as http:
            yield Running(container, http, auth or await connect(container), events)


@pytest.fixture
async def example(make_settings, clock) -> AsyncIterator[Running]:
    async with serving(make_settings(policy_file=str(EXAMPLE)), clock) as service:
        yield service


def refund(amount: int | None, *, reason: str = "duplicate", customer: str = "cus_QaAbCdEfGhIjK",
           charge: str = "ch_3NxYzAbCdEfGhIjK") -> dict[str, Any]:
    details = {"charge_id": charge, "currency": "usd", "reason": reason, "customer_id": customer}
    if amount is not None:
        details["amount_cents"] = amount
    return {**REFUND, "details": details}


def payout(amount: int) -> dict[str, Any]:
    return {"action": "create_payout", "summary": "Payout to the bank",
            "details": {"amount_cents": amount, "currency": "usd"}}


def rule_actor(name: str) -> dict[str, str]:
    return {"type": "rule", "id": name, "name": name}


# ---- CONTRACT §6, as written there ------------------------------------------------------------

async def test_read_only_lookup_passes_without_review(example):
    body = await example.post({"action": "retrieve_balance", "summary": "Check the balance", "details": {}}, 200)
    assert body["status"] == "approved"
    assert body["decidedBy"] == rule_actor("read-only lookups")
    assert body["rule"] == "read-only lookups"
    # Stripe is not configured here: the lookup ran at once and failed clearly, not silently.
    assert body["execution"]["status"] == "failed"
    assert body["execution"]["error"]["code"] == "stripe_not_configured"


async def test_small_duplicate_refund_is_approved_by_its_rule(example):
    body = await example.post(refund(3000), 200)
    assert body["status"] == "approved"
    assert body["decidedBy"] == rule_actor("small duplicate refunds")
    assert body["rule"] == "small duplicate refunds"
    assert body["approvals"] == [] and body["execution"]["status"] == "queued"
    stored = await example.container.approvals.get(None, body["approvalId"])
    assert stored.policy_version == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    # Both halves of the condition matter: the same amount for another reason is reviewed.
    other = await example.post(refund(3000, reason="requested_by_customer"), 202)
    assert other["status"] == "pending" and other["rule"] is None


async def test_very_large_payout_is_rejected_with_the_rules_note(example):
    body = await example.post(payout(5_000_001), 200)
    assert body["status"] == "rejected"
    assert body["decidedBy"] == rule_actor("very large payouts")
    assert body["decisionNote"] == "Payouts above $50,000 are made by hand."
    assert body["execution"]["status"] == "not_requested"
    assert (await example.post(payout(5_000_000), 202))["rule"] is None  # the bound itself is reviewed


async def test_large_refund_needs_two_different_approvers(example):
    body = await example.post(refund(250_000), 202)
    assert (body["status"], body["rule"], body["requiredApprovals"]) == ("pending", "large refunds", 2)
    approval_id = body["approvalId"]
    decisions = example.container.decisions

    assert (await decisions.decide(approval_id, ALICE, "approve", note="Looks right")).outcome == "vote"
    body = await example.get(approval_id)
    assert body["status"] == "pending"
    assert [(a["by"]["id"], a["note"]) for a in body["approvals"]] == [("UALICE", "Looks right")]

    assert (await decisions.decide(approval_id, ALICE, "approve")).outcome == "duplicate_vote"
    assert len((await example.get(approval_id))["approvals"]) == 1

    assert (await decisions.decide(approval_id, BOB, "approve")).outcome == "decided"
    body = await example.get(approval_id)
    assert body["status"] == "approved"
    assert [a["by"]["id"] for a in body["approvals"]] == ["UALICE", "UBOB"]
    assert body["decidedBy"]["id"] == "UBOB"
    assert "vote" in (event for _, event in example.events)


async def test_one_rejection_rejects_a_two_approver_request(example):
    approval_id = (await example.post(refund(250_000), 202))["approvalId"]
    await example.container.decisions.decide(approval_id, ALICE, "approve")
    result = await example.container.decisions.decide(approval_id, BOB, "reject", note="Not this one")
    assert result.outcome == "decided"
    body = await example.get(approval_id)
    assert (body["status"], body["decisionNote"]) == ("rejected", "Not this one")


async def test_no_matching_rule_reviews_with_the_defaults(example):
    body = await example.post(refund(34_900), 202)
    assert (body["status"], body["rule"], body["requiredApprovals"]) == ("pending", None, 1)
    created, expires = (datetime.fromisoformat(body[k]) for k in ("createdAt", "expiresAt"))
    assert expires - created == timedelta(hours=24)
    stored = await example.container.approvals.get(None, body["approvalId"])
    assert stored.approvers == ["U012ABCDEF", "S0FINANCE"]
    # A whole refund has no amount: neither amount rule can say it is small, so people look at it.
    assert (await example.post(refund(None), 202))["rule"] is None


# ---- velocity -----------------------------------------------------------------------------------

async def test_the_tenth_small_refund_of_the_day_for_one_customer_is_reviewed(make_settings, clock):
    async with serving(make_settings(policy_file=str(VELOCITY)), clock) as service:
        for n in range(9):  # spread over 20 hours: all within one day
            body = await service.post(refund(1500, charge=f"ch_{n:04d}AbCdEfGh"), 200)
            assert (body["status"], body["rule"]) == ("approved", "small refunds"), n
            clock.advance(hours=2.5)
        other_customer = await service.post(refund(1500, customer="cus_OtherCustomer1"), 200)
        assert other_customer["rule"] == "small refunds"  # the count is per customer

        tenth = await service.post(refund(1500, charge="ch_9999AbCdEfGh"), 202)
        assert (tenth["status"], tenth["rule"], tenth["requiredApprovals"]) == ("pending", "refund spree", 2)


async def test_refunds_older_than_a_day_stop_counting(make_settings, clock):
    async with serving(make_settings(policy_file=str(VELOCITY)), clock) as service:
        for n in range(9):
            assert (await service.post(refund(1500, charge=f"ch_{n:04d}AbCdEfGh"), 200))["rule"] == "small refunds"
            clock.advance(minutes=1)
        clock.advance(hours=23)  # the first of the nine is 23h09m old: all still count
        assert (await service.post(refund(1500, charge="ch_late1AbCdEfGh"), 202))["rule"] == "refund spree"
        clock.advance(hours=1)  # now the nine are over a day old; only the pending tenth counts
        body = await service.post(refund(1500, charge="ch_late2AbCdEfGh"), 200)
        assert (body["status"], body["rule"]) == ("approved", "small refunds")


async def test_intake_reads_totals_only_for_a_policy_that_uses_them(make_settings, clock):
    assert load_policy(VELOCITY).reads_totals and not load_policy(EXAMPLE).reads_totals
    for policy_file, expected in ((EXAMPLE, 0), (VELOCITY, 1)):
        container = build_container(make_settings(policy_file=str(policy_file)), clock=clock)
        calls: list[str] = []

        async def counting(session: Any, connection: Any, action: str, *rest: Any, calls: list[str] = calls) -> Any:
            calls.append(action)
            return await compute_totals(session, connection, action, *rest)

        # The service as the composition root builds it, with a totals provider that counts its calls.
        service = ApprovalService(container.db, settings=container.settings, waiters=container.waiters,
                                  effects=container.effects, policy=lambda c=container: c.policy,
                                  gateway=container.gateway, totals=counting, clock=clock)
        async with running(container, worker=False):
            created = await container.db.write(lambda session: connections.create(session, "agent"))
            await service.create(created.connection, Intake(ApprovalCreate.model_validate(refund(1500))))
        assert len(calls) == expected, policy_file.name


# ---- expiry across a restart, cancellation ------------------------------------------------------

async def test_a_pending_request_expires_on_time_after_a_restart(make_settings, clock):
    settings = make_settings()  # the built-in policy: reviewed by one approver within 24 hours
    async with serving(settings, clock) as first:
        body = await first.post(REFUND, 202)
        approval_id, auth = body["approvalId"], first.auth
        assert datetime.fromisoformat(body["expiresAt"]) == clock.now + timedelta(hours=24)
        clock.advance(hours=23, minutes=59)
        await first.container.worker.drain()
        assert (await first.get(approval_id))["status"] == "pending"  # its time has not come
    # The first process is gone. Time passes; a new one starts on the same database.
    clock.advance(hours=2)
    async with serving(settings, clock, auth) as second:
        assert await second.container.worker.drain() >= 1
        body = await second.get(approval_id)
        assert body["status"] == "expired"
        assert body["decidedBy"]["type"] == "system"
        assert (approval_id, "expired") in second.events  # Slack, alerts and callbacks follow from this

        late = await second.container.decisions.decide(approval_id, ALICE, "approve")
        assert late.outcome == "already_final" and late.approval.status == "expired"
        started = time.perf_counter()
        held = await second.get(approval_id, waitMs=5000)
        assert held["status"] == "expired" and time.perf_counter() - started < 1


async def test_cancellation_is_final_releases_holds_and_notifies(example, clock):
    approval_id = (await example.post(refund(34_900), 202))["approvalId"]
    hold = asyncio.create_task(example.get(approval_id, waitMs=10_000))
    await asyncio.sleep(0.2)
    assert not hold.done()

    started = time.perf_counter()
    response = await example.http.post(f"/v1/approvals/{approval_id}/cancel", headers=example.auth)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["decidedBy"]["type"] == "system"
    held = await asyncio.wait_for(hold, timeout=5)
    assert held["status"] == "cancelled" and time.perf_counter() - started < 2
    assert (approval_id, "cancelled") in example.events

    again = await example.http.post(f"/v1/approvals/{approval_id}/cancel", headers=example.auth)
    assert again.status_code == 409
    assert (await example.container.decisions.decide(approval_id, ALICE, "approve")).outcome == "already_final"
    clock.advance(hours=25)
    await example.container.worker.drain()  # its expiry job finds nothing to do
    assert (await example.get(approval_id))["status"] == "cancelled"
    async with example.container.db.read() as session:
        trail = (await session.scalars(select(AuditEvent.event).where(AuditEvent.approval_id == approval_id)
                                       .order_by(AuditEvent.id))).all()
    assert trail.count("approval.cancelled") == 1 and "approval.expired" not in trail


# ---- a bad policy file ----------------------------------------------------------------------------

BAD_POLICY = """\
defaults:
  approvers: [U012ABCDEF]
rules:
  - name: small refunds
    actions: [issue_refund]
    when: >-
      detials.amount_cents <= 2000
    decision: approve
"""


def test_a_bad_policy_file_refuses_start_up(make_settings, tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text(BAD_POLICY)
    with pytest.raises(PolicyError) as refused:
        build_container(make_settings(policy_file=str(bad)))
    assert str(refused.value) == (f"{bad}:7: rules[0].when: undeclared reference to 'detials' "
                                  f"(did you mean 'details'?)")
