"""Decisions, quorum, races, expiry and holds, through the service and the API."""

import asyncio
import time

from sqlalchemy import select

from api.approvals.actors import Actor
from api.audit.models import AuditEvent
from api.outbox.models import Job
from tests.conftest import REFUND

ALICE = Actor("slack_user", "UALICE", "alice")
BOB = Actor("slack_user", "UBOB", "bob")


async def create(client, auth, **extra) -> str:
    response = await client.post("/v1/approvals", json={**REFUND, **extra}, headers=auth)
    assert response.status_code in (200, 202), response.text
    return response.json()["approvalId"]


async def test_edit_fills_modified_details_and_changes(client, auth, container):
    approval_id = await create(client, auth)
    result = await container.decisions.decide(approval_id, ALICE, "approve", note="Half, per policy",
                                              edits={"amount_cents": 17450})
    assert result.outcome == "decided"
    body = (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert body["status"] == "approved"
    assert body["modifiedDetails"] == {**REFUND["details"], "amount_cents": 17450}
    assert body["changes"] == {"amount_cents": {"from": 34900, "to": 17450}}
    assert body["decisionNote"] == "Half, per policy"
    assert body["decidedBy"] == {"type": "slack_user", "id": "UALICE", "name": "alice"}
    assert body["execution"]["status"] == "queued"
    async with container.db.read() as session:
        query = select(Job.kind).where(Job.payload["approval_id"].as_string() == approval_id)
        kinds = (await session.scalars(query)).all()
    assert "stripe.execute" in kinds


async def test_raising_an_amount_is_refused_and_changes_nothing(client, auth, container):
    from api.errors import ValidationFailed

    approval_id = await create(client, auth, action="create_payout", summary="Payout",
                               details={"amount_cents": 10000, "currency": "usd"})
    try:
        await container.decisions.decide(approval_id, ALICE, "approve", edits={"amount_cents": 20000})
    except ValidationFailed as exc:
        assert "amount_cents" in str(exc.errors)
    else:
        raise AssertionError("a payout may only be lowered")
    assert (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()["status"] == "pending"


async def test_racing_clicks_record_one_decision(client, auth, container):
    approval_id = await create(client, auth)
    results = await asyncio.gather(
        *(container.decisions.decide(approval_id, Actor("slack_user", f"UVOTER{i}"), "approve") for i in range(5)),
        container.decisions.decide(approval_id, BOB, "reject", note="no"),
    )
    decided = [r for r in results if r.outcome == "decided"]
    assert len(decided) == 1
    assert all(r.outcome == "already_final" for r in results if r not in decided)
    async with container.db.read() as session:
        finals = (await session.scalars(select(AuditEvent.event).where(
            AuditEvent.approval_id == approval_id,
            AuditEvent.event.in_(["approval.approved", "approval.rejected"])))).all()
        refusals = (await session.scalars(select(AuditEvent).where(
            AuditEvent.approval_id == approval_id, AuditEvent.event == "decision.refused"))).all()
    assert len(finals) == 1
    assert len(refusals) == 5


async def test_quorum_needs_two_different_people(client, auth, container):
    approval_id = await create(client, auth)
    from sqlalchemy import update

    from api.approvals.models import Approval

    await container.db.write(lambda s: s.execute(update(Approval).where(Approval.id == approval_id)
                                                 .values(required_approvals=2)))
    first = await container.decisions.decide(approval_id, ALICE, "approve")
    assert first.outcome == "vote"
    twice = await container.decisions.decide(approval_id, ALICE, "approve")
    assert twice.outcome == "duplicate_vote"
    body = (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert body["status"] == "pending" and len(body["approvals"]) == 1
    second = await container.decisions.decide(approval_id, BOB, "approve")
    assert second.outcome == "decided"
    body = (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert body["status"] == "approved"
    assert [a["by"]["id"] for a in body["approvals"]] == ["UALICE", "UBOB"]


async def test_one_rejection_rejects_a_quorum(client, auth, container):
    approval_id = await create(client, auth)
    from sqlalchemy import update

    from api.approvals.models import Approval

    await container.db.write(lambda s: s.execute(update(Approval).where(Approval.id == approval_id)
                                                 .values(required_approvals=2)))
    await container.decisions.decide(approval_id, ALICE, "approve")
    result = await container.decisions.decide(approval_id, BOB, "reject", note="Not this one")
    assert result.outcome == "decided" and result.approval.status == "rejected"


async def test_sync_hold_is_released_by_the_decision(client, auth, container):
    async def decide_soon() -> float:
        while True:
            rows, _ = await container.approvals.list(None, status="pending")
            if rows:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        decided_at = time.perf_counter()
        await container.decisions.decide(rows[0].id, ALICE, "reject", note="Not today")
        return decided_at

    request = client.post("/v1/approvals", json={**REFUND, "timeoutMs": 10_000}, headers=auth)
    response, decided_at = await asyncio.gather(request, decide_soon())
    released_after = time.perf_counter() - decided_at
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["decisionNote"] == "Not today"
    assert released_after < 1.0  # woken, not found by a later poll of the whole timeout


async def test_sync_hold_times_out_with_pending(client, auth):
    response = await client.post("/v1/approvals", json={**REFUND, "timeoutMs": 200}, headers=auth)
    assert response.status_code == 200 and response.json()["status"] == "pending"
    waited = await client.get(f"/v1/approvals/{response.json()['approvalId']}?waitMs=150", headers=auth)
    assert waited.json()["status"] == "pending"


async def test_expiry_job_expires_at_its_time(client, auth, container, clock):
    approval_id = await create(client, auth)
    assert await container.worker.drain() == 0  # not due yet
    clock.advance(hours=25)
    await container.worker.drain()
    body = (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert body["status"] == "expired"
    assert body["decidedBy"]["type"] == "system"
    late = await container.decisions.decide(approval_id, ALICE, "approve")
    assert late.outcome == "already_final"


async def test_a_click_after_expiry_time_expires_instead_of_approving(client, auth, container, clock):
    approval_id = await create(client, auth)
    clock.advance(hours=25)  # the expiry job has not run yet
    result = await container.decisions.decide(approval_id, ALICE, "approve")
    assert result.outcome == "already_final" and result.approval.status == "expired"
