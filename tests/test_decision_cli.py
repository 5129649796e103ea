"""People, not accounts, vote (CLI side): `approvals approve|reject --as U…`, checked by the same
`may_decide` as Slack, one vote per person whatever the surface, and `--json` views.

The CLI runs as operators run it: a separate process on the same database as the service.
"""

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from api.approvals.schemas import ApprovalCreate
from api.approvals.service import Intake
from api.audit.models import AuditEvent
from api.connections import service as connections
from api.main import Container, build_container, running
from tests.conftest import REFUND
from tests.slack_helpers import slack_harness
from tests.test_cli import CLI

ALICE, BOB = "UALICE", "UBOB"


async def cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`cheqpoint …` in its own process; `env` replaces the service's settings the test names."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SLACK_", "STRIPE_", "CHEQPOINT_"))}
    environment.update({"DATABASE_URL": database_url, "CHEQPOINT_APPROVERS": f"{ALICE},{BOB}", **env})
    return await asyncio.to_thread(subprocess.run, [*CLI, *args], capture_output=True, text=True,
                                   env=environment, timeout=60, check=False)


def quorum_of_two(tmp_path: Path) -> str:
    path = tmp_path / "quorum.yaml"
    path.write_text("defaults:\n  approvers: [UALICE, UBOB]\n  required_approvals: 2\n")
    return str(path)


@pytest.fixture
async def service(make_settings, clock, tmp_path) -> AsyncIterator[Container]:
    """The service without Slack, with a quorum of two among Alice and Bob."""
    built = build_container(make_settings(approvers=[ALICE, BOB], policy_file=quorum_of_two(tmp_path)), clock=clock)
    async with running(built, worker=False):
        yield built


async def new_request(container: Container) -> str:
    created = await container.db.write(lambda session: connections.create(session, "support-agent"))
    intake = Intake(ApprovalCreate(**{**REFUND, "execute": False}))
    return (await container.approvals.create(created.connection, intake)).approval.id


async def audit(container: Container, event: str) -> list[AuditEvent]:
    async with container.db.read() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.event == event))).all())


async def test_the_same_person_in_slack_and_at_the_cli_is_one_vote(make_settings, clock, tmp_path, database_url):
    policy = quorum_of_two(tmp_path)
    async with slack_harness(make_settings, clock, approvers=[ALICE, BOB], policy_file=policy) as slack:
        approval_id = (await slack.request({**REFUND, "execute": False}))["approvalId"]
        await slack.settle()
        await slack.click("approve", approval_id, user=ALICE)

        again = await cli(database_url, "approvals", "approve", approval_id, "--as", ALICE,
                          CHEQPOINT_POLICY_FILE=policy)
        assert again.returncode == 4 and "already voted" in again.stderr, again.stderr
        state = await slack.approval(approval_id)
        assert state["status"] == "pending" and [v["by"]["id"] for v in state["approvals"]] == [ALICE]

        bob = await cli(database_url, "approvals", "approve", approval_id, "--as", BOB, CHEQPOINT_POLICY_FILE=policy)
        assert bob.returncode == 0, bob.stderr
        final = await slack.approval(approval_id)
        assert final["status"] == "approved"
        assert final["decidedBy"] == {"type": "operator", "id": BOB, "name": None}
        row = await slack.container.approvals.get(None, approval_id)
        (vote,) = [d for d in row.decisions if d.actor_id == BOB]
        assert vote.actor_type == "operator" and set(vote.via) == {"osUser", "host"}


async def test_the_os_user_cannot_cast_votes(service, database_url):
    approval_id = await new_request(service)
    anonymous = await cli(database_url, "approvals", "approve", approval_id, USER="x")
    assert anonymous.returncode == 2 and "--as" in anonymous.stderr
    first = await cli(database_url, "approvals", "approve", approval_id, "--as", ALICE, USER="x")
    assert first.returncode == 0 and "1 of 2" in first.stdout, first.stderr
    second = await cli(database_url, "approvals", "approve", approval_id, "--as", ALICE, USER="y")
    assert second.returncode == 4, second.stderr
    approval = await service.approvals.get(None, approval_id)
    assert approval.status == "pending" and [d.actor_id for d in approval.decisions] == [ALICE]
    assert [e.actor["via"]["osUser"] for e in await audit(service, "decision.duplicate")] == ["y"]


async def test_deciding_as_someone_who_may_not_is_exit_5_and_records_nothing(service, database_url):
    approval_id = await new_request(service)
    cases = [
        ({}, "UMALLORY", "not among the approvers"),
        # Removed from CHEQPOINT_APPROVERS since the request was made: no longer decides it.
        ({"CHEQPOINT_APPROVERS": BOB}, ALICE, "not among the approvers"),
        # A user group cannot be expanded without Slack: only people named directly may decide.
        ({"CHEQPOINT_APPROVERS": "S0FINANCE"}, "UFINANCE1", "without Slack"),
    ]
    for env, person, why in cases:
        refused = await cli(database_url, "approvals", "reject", approval_id, "--as", person, "--note", "no", **env)
        assert refused.returncode == 5, (person, refused.stderr)
        assert why in refused.stderr and "Traceback" not in refused.stderr
    approval = await service.approvals.get(None, approval_id)
    assert approval.status == "pending" and approval.decisions == []
    refusals = await audit(service, "decision.refused")
    assert [e.actor["id"] for e in refusals] == ["UMALLORY", ALICE, "UFINANCE1"]
    assert all(set(e.actor["via"]) == {"osUser", "host"} for e in refusals)


async def test_an_edit_at_the_cli_is_a_new_revision_and_an_older_one_is_refused(service, database_url):
    approval_id = await new_request(service)
    assert (await cli(database_url, "approvals", "approve", approval_id, "--as", ALICE)).returncode == 0
    edited = await cli(database_url, "approvals", "approve", approval_id, "--as", BOB, "--set", "amount_cents=10000")
    assert edited.returncode == 0 and "earlier approvals no longer count" in edited.stdout, edited.stderr
    stale = await cli(database_url, "approvals", "approve", approval_id, "--as", ALICE, "--revision", "1")
    assert stale.returncode == 4 and "revision 2" in stale.stderr
    approval = await service.approvals.get(None, approval_id)
    assert approval.status == "pending" and approval.revision == 2
    fresh = await cli(database_url, "approvals", "approve", approval_id, "--as", ALICE, "--revision", "2")
    assert fresh.returncode == 0 and "approved" in fresh.stdout


async def test_list_and_show_print_json_and_status_is_a_choice(service, database_url):
    empty = await cli(database_url, "approvals", "list")
    assert empty.returncode == 0 and empty.stdout.strip() == "no approvals"
    assert json.loads((await cli(database_url, "approvals", "list", "--json")).stdout) == {"data": []}
    approval_id = await new_request(service)
    listed = json.loads((await cli(database_url, "approvals", "list", "--status", "pending", "--json")).stdout)
    assert [a["approvalId"] for a in listed["data"]] == [approval_id]
    shown = json.loads((await cli(database_url, "approvals", "show", approval_id, "--json")).stdout)
    assert shown["approval"]["revision"] == 1 and shown["votes"] == []
    assert [e["event"] for e in shown["audit"]] == ["approval.created"]
    bad = await cli(database_url, "approvals", "list", "--status", "weird")
    assert bad.returncode == 2 and "pending" in bad.stderr and "cancelled" in bad.stderr
