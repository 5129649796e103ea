"""Crash windows on the Slack side: nothing lost, nothing doubled.

- a post whose answer never came back (the connection dropped, the process died) is found by its
  metadata and adopted, not posted again;
- a worker process killed while Slack holds its answer: another worker takes the job within
  seconds (short leases) and finds the message instead of posting a second one;
- a click acknowledged to Slack was already decided, so a process dying right after the ack does
  not lose it;
- a job that runs longer than its lease keeps it (heartbeat), so no one else runs it meanwhile.
"""

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from api.approvals.actors import Actor
from api.outbox.models import Job
from api.outbox.registry import JobRegistry
from api.outbox.service import enqueue
from api.outbox.worker import Worker
from bot.ids import review_actions_block_id
from bot.wiring import slack_of
from tests.ops_processes import Process, environment
from tests.slack_helpers import (
    APPROVER,
    GROUP_MEMBER,
    PAYOUT,
    REVIEW,
    SECRET,
    TOKEN,
    block_actions,
    button_value,
    has_buttons,
    interactivity_body,
    review_message,
    signature_headers,
    slack_harness,
)

OPERATOR = Actor("operator", APPROVER, "Ops")


def real_clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


async def test_a_post_whose_answer_was_lost_is_adopted_not_posted_again(slack, clock):
    slack.fake.lose_next_answer("chat.postMessage")
    created = await slack.request(PAYOUT)
    await slack.settle()
    assert len(slack.fake.messages_in(REVIEW)) == 1  # Slack posted it; we never heard the ts

    clock.advance(seconds=10)
    await slack.settle()
    [message] = slack.fake.messages_in(REVIEW)
    assert (await slack.location(created["approvalId"]))[1] == message["ts"]
    assert has_buttons(message)
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    [lookup] = slack.fake.calls_to("conversations.history")
    assert lookup["channel"] == REVIEW and float(lookup["oldest"]) > 0


async def test_a_post_adopted_after_a_decision_loses_its_buttons(slack, clock):
    slack.fake.lose_next_answer("chat.postMessage")
    created = await slack.request(PAYOUT)
    await slack.settle()
    await slack.container.decisions.decide(created["approvalId"], OPERATOR, "approve")
    for _ in range(3):
        clock.advance(seconds=10)
        await slack.settle()
    [message] = slack.fake.messages_in(REVIEW)
    assert (await slack.approval(created["approvalId"]))["status"] == "approved"
    assert not has_buttons(message)


async def _posted_ts(container, approval_id: str) -> str | None:
    found = await review_message(container.db, approval_id)
    return found[1] if found else None


async def test_a_worker_killed_while_slack_answers_is_replaced_within_seconds_without_a_second_post(
        make_settings, tmp_path):
    async with slack_harness(make_settings, real_clock) as slack:
        created = await slack.request(PAYOUT)
        approval_id = created["approvalId"]
        settings = slack.container.settings
        env = environment(settings.database_url, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
                          SLACK_API_URL=settings.slack_api_url, CHEQPOINT_REVIEW_CHANNEL=REVIEW,
                          CHEQPOINT_APPROVERS=APPROVER)
        slack.fake.delay_next_answer("chat.postMessage", 60)  # posted at once, answered a minute later
        first = Process(["worker"], env, tmp_path / "worker-1.log")
        try:
            deadline = time.monotonic() + 30
            while not slack.fake.messages_in(REVIEW):
                assert time.monotonic() < deadline, first.log()
                await asyncio.sleep(0.05)
        finally:
            first.kill()  # between Slack's work and the worker hearing of it
        killed_at = time.monotonic()
        second = Process(["worker"], env, tmp_path / "worker-2.log")
        try:
            while await _posted_ts(slack.container, approval_id) is None:
                assert time.monotonic() - killed_at < 40, second.log()
                await asyncio.sleep(0.1)
        finally:
            second.kill()
        [message] = slack.fake.messages_in(REVIEW)
        assert await _posted_ts(slack.container, approval_id) == message["ts"]
        assert time.monotonic() - killed_at < 25  # a short lease, not two minutes


async def test_an_acknowledged_click_survives_the_process_dying_right_after_the_ack(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    approval_id = created["approvalId"]
    channel, ts = await slack.location(approval_id)
    value = button_value(slack.fake.message(channel, ts)["blocks"], approval_id, "approve")
    # A member of the approvers' user group: knowing who is in it asks Slack, which takes a moment.
    slack.fake.delay_next_answer("usergroups.users.list", 0.5)
    payload = block_actions("approve", value, review_actions_block_id(approval_id), user=GROUP_MEMBER,
                            channel=channel, message_ts=ts)
    body = interactivity_body(payload)
    response = await slack.http.post("/slack/events", content=body, headers=signature_headers(body))
    assert response.status_code == 200  # Slack now considers the click delivered
    # The process dies: whatever its listeners were still doing is cut off.
    inflight = slack_of(slack.container).inflight
    for task in list(inflight._tasks):
        task.cancel()
    await asyncio.sleep(0)
    assert (await slack.approval(approval_id))["status"] == "approved"


async def test_a_click_whose_decision_the_database_refused_is_not_acknowledged(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    approval_id = created["approvalId"]
    # The database refuses the decision's write (its audit entry cannot be stored): nothing is decided.
    async with slack.container.db.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
    try:
        response = await slack.click("approve", approval_id)
    finally:
        async with slack.container.db.engine.begin() as connection:
            await connection.execute(text("ALTER TABLE audit_events_away RENAME TO audit_events"))
    status = (await slack.approval(approval_id))["status"]
    # Acknowledged means decided: otherwise Slack must hear the failure (and show it to the person).
    assert status == "approved" or not 200 <= response.status_code < 300, (response.status_code, status)


async def test_a_job_longer_than_its_lease_keeps_it_while_its_worker_lives(container):
    started = asyncio.Event()

    async def slow(ctx, payload):
        started.set()
        await asyncio.sleep(2.0)

    registry = JobRegistry()
    registry.register("test.slow", slow)
    await container.db.write(lambda session: enqueue(session, "test.slow", {}))
    owner = Worker(container.worker.context, registry, lease_seconds=0.6, clock=real_clock)
    rival = Worker(container.worker.context, registry, lease_seconds=0.6, clock=real_clock)
    running = asyncio.create_task(owner.run_once())
    await started.wait()
    taken = 0
    for _ in range(12):  # well past the lease
        await asyncio.sleep(0.1)
        taken += await rival.run_once()
    assert await running == 1
    assert taken == 0
    async with container.db.read() as session:
        [job] = (await session.scalars(select(Job).where(Job.kind == "test.slow"))).all()
    assert job.status == "done" and job.attempts == 1

