"""What only PostgreSQL does: several processes sharing one database."""

import asyncio
import time

import pytest

from api.approvals.actors import Actor
from api.main import build_container, running
from tests.conftest import REFUND

pytestmark = pytest.mark.postgres


async def test_a_decision_in_one_instance_releases_a_hold_in_another(settings, clock):
    from api.approvals.schemas import ApprovalCreate
    from api.approvals.service import Intake
    from api.connections import service

    holder, decider = build_container(settings, clock=clock), build_container(settings, clock=clock)
    holder.waiters.poll_seconds = 60  # only LISTEN/NOTIFY can release the hold in time
    async with running(holder, worker=False), running(decider, worker=False):
        created = await holder.db.write(lambda s: service.create(s, "agent"))
        approval = (await holder.approvals.create(created.connection, Intake(ApprovalCreate(**REFUND)))).approval

        async def decide_soon() -> float:
            await asyncio.sleep(0.3)
            decided_at = time.perf_counter()
            await decider.decisions.decide(approval.id, Actor("operator", "UOPS", "ops"), "reject", note="no")
            return decided_at

        held, decided_at = await asyncio.gather(
            holder.approvals.hold(created.connection.id, approval.id, 10_000), decide_soon())
        released_after = time.perf_counter() - decided_at
    assert held.status == "rejected"
    assert released_after < 0.2


async def test_racing_decisions_from_two_instances_record_one(settings, clock):
    from api.approvals.schemas import ApprovalCreate
    from api.approvals.service import Intake
    from api.connections import service

    first, second = build_container(settings, clock=clock), build_container(settings, clock=clock)
    async with running(first, worker=False), running(second, worker=False):
        created = await first.db.write(lambda s: service.create(s, "agent"))
        approval = (await first.approvals.create(created.connection, Intake(ApprovalCreate(**REFUND)))).approval
        results = await asyncio.gather(*(
            instance.decisions.decide(approval.id, Actor("slack_user", f"UVOTER{i}", None), "approve")
            for i, instance in enumerate([first, second] * 4)))
    assert sum(r.outcome == "decided" for r in results) == 1
    assert all(r.outcome in ("decided", "already_final") for r in results)
