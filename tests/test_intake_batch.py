"""Intake under the group commit: requests written together in one batch (one INSERT per table, one
call to SQLite's thread) stay separate, exact and chained. Each test sends a burst at once, so the
writer takes the requests as batches; on PostgreSQL each is its own transaction."""

import asyncio
from collections import Counter

from sqlalchemy import func, select

from api.approvals.models import Approval
from api.audit.models import AuditEvent
from api.audit.verify import verify
from api.outbox.models import Job
from tests.conftest import REFUND


async def _count(container, column, *where) -> int:
    async with container.db.read() as session:
        return await session.scalar(select(func.count(column)).where(*where))


async def test_a_burst_is_stored_whole_with_its_jobs_and_an_intact_chain(client, auth, container):
    answers = await asyncio.gather(*(client.post("/v1/approvals", json=REFUND, headers=auth) for _ in range(40)))
    assert Counter(answer.status_code for answer in answers) == {202: 40}
    ids = {answer.json()["approvalId"] for answer in answers}
    assert len(ids) == 40
    assert await _count(container, Approval.id) == 40
    assert await _count(container, Job.id, Job.kind == "approval.expire") == 40
    assert await _count(container, AuditEvent.id, AuditEvent.event == "approval.created",
                        AuditEvent.approval_id.in_(ids)) == 40
    async with container.db.read() as session:  # unset columns are SQL NULL, as the ORM leaves them
        assert await session.scalar(select(func.count()).select_from(Approval).where(
            Approval.modified_details.is_(None), Approval.decided_by.is_(None))) == 40
    checked = await verify(container.db)
    assert checked.intact and checked.checked == await _count(container, AuditEvent.id)


async def test_one_idempotency_key_sent_twenty_times_at_once_stores_one_approval(client, auth, container):
    """The duplicates meet in one batch: the unique key refuses all but one, and each of them is
    answered with the approval that was stored, not an error."""
    headers = {**auth, "Idempotency-Key": "burst-7"}
    answers = await asyncio.gather(*(client.post("/v1/approvals", json=REFUND, headers=headers) for _ in range(20)))
    assert {answer.status_code for answer in answers} <= {200, 202}, [a.text for a in answers]
    assert len({answer.json()["approvalId"] for answer in answers}) == 1
    assert await _count(container, Approval.id) == 1
    assert (await verify(container.db)).intact
