"""Two API replicas and two workers on PostgreSQL, the workers killed at random every few seconds
(SIGKILL, then a new one started), Slack enforcing one message a second per channel and answering
some posts late so kills land between Slack's work and the worker hearing of it: every request
reaches reviewers, none is posted twice, every acknowledged click is recorded, and no buttons remain
on a decided request."""

import asyncio
import random
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.approvals.models import Approval
from api.db import Database
from bot.delivery import EVENT_TYPE
from bot.ids import review_actions_block_id
from bot.models import SlackMessage
from tests.fakes.slack import FakeSlack
from tests.ops_processes import Process, environment, new_connection, served
from tests.slack_helpers import (
    APPROVER,
    PAYOUT,
    REVIEW,
    SECRET,
    TOKEN,
    block_actions,
    button_value,
    has_buttons,
    interactivity_body,
    signature_headers,
)

pytestmark = pytest.mark.postgres

REQUESTS = 16
CLICKS = 4


async def posted(db: Database) -> dict[str, tuple[str | None, str]]:
    async with db.read() as session:
        rows = (await session.execute(select(Approval.id, SlackMessage.ts, Approval.status).outerjoin(
            SlackMessage, SlackMessage.approval_id == Approval.id))).all()
    return {row.id: (row.ts, row.status) for row in rows}


def messages_by_approval(fake: FakeSlack) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for message in fake.messages_in(REVIEW):
        metadata = message.get("metadata") or {}
        if metadata.get("event_type") == EVENT_TYPE:
            found.setdefault(metadata["event_payload"]["approval_id"], []).append(message)
    return found


async def test_workers_killed_at_random_lose_and_double_nothing(database_url, tmp_path: Path):
    rng = random.Random(13)
    fake = FakeSlack(token=TOKEN, limits=True)
    with fake.serving() as slack_url:
        values = dict(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack_url,
                      CHEQPOINT_REVIEW_CHANNEL=REVIEW, CHEQPOINT_APPROVERS=APPROVER,
                      CHEQPOINT_SLACK_DIGEST_THRESHOLD="1000")  # each request gets its own message here
        env = environment(database_url, **values)
        key = new_connection(database_url)["key"]
        db = Database(database_url)
        logs = iter(range(1000))
        workers = [Process(["worker"], env, tmp_path / f"worker-{next(logs)}.log") for _ in range(2)]
        kills = 0
        try:
            with served(database_url, tmp_path / "api-1.log", "--no-worker", **values) as (first, _), \
                    served(database_url, tmp_path / "api-2.log", "--no-worker", **values) as (second, _):
                replicas = [first, second]
                async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
                    for n in range(REQUESTS):
                        if n % 3 == 0:  # answered late: a kill may land between the post and its ts
                            fake.delay_next_answer("chat.postMessage", 1.5)
                        response = await http.post(f"{replicas[n % 2]}/v1/approvals",
                                                   json={**PAYOUT, "summary": f"Payout {n}"})
                        assert response.status_code == 202, response.text

                    async def kill_one() -> None:
                        nonlocal kills
                        index = rng.randrange(len(workers))
                        workers[index].kill()
                        kills += 1
                        workers[index] = Process(["worker"], env, tmp_path / f"worker-{next(logs)}.log")

                    clicked: list[str] = []
                    deadline = time.monotonic() + 120
                    next_kill = time.monotonic() + rng.uniform(2, 4)
                    while True:
                        state = await posted(db)
                        if all(ts for ts, _ in state.values()) and len(clicked) == CLICKS:
                            break
                        assert time.monotonic() < deadline, f"{sum(1 for ts, _ in state.values() if ts)} posted"
                        if time.monotonic() >= next_kill:
                            await kill_one()
                            next_kill = time.monotonic() + rng.uniform(2, 4)
                        # Reviewers click as messages appear; each acknowledged click must stand.
                        for approval_id, (ts, status) in state.items():
                            if ts and status == "pending" and len(clicked) < CLICKS and approval_id not in clicked:
                                message = fake.message(REVIEW, ts)
                                value = button_value(message["blocks"], approval_id, "approve")
                                payload = block_actions("approve", value, review_actions_block_id(approval_id),
                                                        user=APPROVER, channel=REVIEW, message_ts=ts)
                                body = interactivity_body(payload)
                                response = await http.post(f"{rng.choice(replicas)}/slack/events", content=body,
                                                           headers=signature_headers(body))
                                assert response.status_code == 200
                                clicked.append(approval_id)
                                assert (await posted(db))[approval_id][1] == "approved"
                        await asyncio.sleep(0.2)

                    # The decided requests' messages lose their buttons once the workers catch up.
                    settle_by = time.monotonic() + 60
                    async def decided_with_buttons() -> list[str]:
                        state = await posted(db)
                        return [a for a in clicked if has_buttons(fake.message(REVIEW, state[a][0] or ""))]

                    while await decided_with_buttons():
                        assert time.monotonic() < settle_by, "a decided request kept its buttons"
                        await asyncio.sleep(0.2)
                    final = await posted(db)
        finally:
            for worker in workers:
                worker.kill()
            await db.close()

    by_approval = messages_by_approval(fake)
    assert kills >= 3
    assert len(by_approval) == REQUESTS
    assert all(len(messages) == 1 for messages in by_approval.values()), {
        a: len(m) for a, m in by_approval.items() if len(m) > 1}
    assert {a: m[0]["ts"] for a, m in by_approval.items()} == {a: ts for a, (ts, _) in final.items()}
    assert fake.rate_limited < 5
