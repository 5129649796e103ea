"""Statuses, verdicts and job kinds are enums whose values are the contract's words, stored as before."""

import re
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from api.approvals.enums import ApprovalStatus, ExecutionStatus, PolicyVerdict
from api.approvals.models import Approval
from api.outbox.kinds import JobStatus
from api.outbox.models import Job
from api.outbox.service import enqueue
from tests.conftest import REFUND

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "CONTRACT.md"


def contract_values(pattern: str) -> list[str]:
    if not CONTRACT.exists():
        pytest.skip(f"{CONTRACT} is not here (it lives beside the repository)")
    match = re.search(pattern, CONTRACT.read_text())
    assert match, pattern
    return [word.strip() for word in match.group(1).split("|")]


def test_the_contract_lists_exactly_the_enums_values() -> None:
    assert contract_values(r'"approvalId": "apr_…", "status": "([a-z_ |]+)"') == list(ApprovalStatus)
    assert contract_values(r'"execution": \{"status": "([a-z_ |]+)"') == list(ExecutionStatus)


async def test_the_openapi_document_lists_the_statuses(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert schemas["ApprovalStatus"]["enum"] == list(ApprovalStatus)
    assert schemas["ExecutionStatus"]["enum"] == list(ExecutionStatus)
    listing = next(p for p in spec["paths"]["/v1/approvals"]["get"]["parameters"] if p["name"] == "status")
    assert "ApprovalStatus" in str(listing["schema"])


async def test_rows_keep_the_plain_words_and_read_back_as_members(client, auth, container) -> None:
    created = (await client.post("/v1/approvals", json={**REFUND, "execute": False}, headers=auth)).json()
    async with container.db.read() as session:
        stored = (await session.execute(text("SELECT status, execution_status FROM approvals WHERE id = :id"),
                                        {"id": created["approvalId"]})).one()
        approval = await session.get(Approval, created["approvalId"])
    assert tuple(stored) == ("pending", "not_requested") and type(stored[0]) is str
    assert approval.status is ApprovalStatus.PENDING and approval.execution_status is ExecutionStatus.NOT_REQUESTED


async def test_a_misspelt_status_is_refused_before_it_is_stored(client, auth, container) -> None:
    created = (await client.post("/v1/approvals", json={**REFUND, "execute": False}, headers=auth)).json()

    async def misspell(session) -> None:
        approval = await session.get(Approval, created["approvalId"])
        approval.status = "aproved"
        await session.flush()

    with pytest.raises(StatementError, match="aproved"):
        await container.db.write(misspell)
    assert (await client.get(f"/v1/approvals/{created['approvalId']}", headers=auth)).json()["status"] == "pending"

    async def bad_job(session) -> None:
        await enqueue(session, "test.kind", {})
        await session.execute(Job.__table__.update().values(status="finished"))

    with pytest.raises(StatementError, match="finished"):
        await container.db.write(bad_job)
    async with container.db.read() as session:
        assert set((await session.scalars(select(Job.status))).all()) <= set(JobStatus)


def test_policy_verdicts_are_the_policy_files_words() -> None:
    assert [v.value for v in PolicyVerdict] == ["pass", "approve", "reject", "review"]
