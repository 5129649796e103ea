"""Review messages posted in batches (the worker hands due post jobs to one handler): each request
gets its message once, one failing post fails only its own job, a lost answer or a stop mid-batch
does not post anything twice, and Slack's 429 still paces posting. Through the real wire: the app
over HTTP, the fake Slack on a port of its own."""

import asyncio
from collections import Counter

import pytest
from sqlalchemy import event, select

from api.outbox.models import Job, JobAttempt
from api.outbox.worker import Worker
from bot import budget
from bot.models import SlackMessage
from tests.slack_helpers import PAYOUT, REVIEW, has_buttons, slack_harness

POST = "slack.post_request"
COUNT = 12  # under the worker's batch (16), over the digests' threshold were it the product's


@pytest.fixture
async def slack(make_settings, clock):
    # Each request keeps its own message (the digests' threshold above the number filed).
    async with slack_harness(make_settings, clock, slack_digest_threshold=100) as harness:
        yield harness


@pytest.fixture
def no_budget(monkeypatch):
    """Slack answers at once and our budget does not pace (as in bench/messages.py): the batch's posts
    all go in one round, so what is asserted is the batch, not the budget's deferrals."""
    monkeypatch.setitem(budget.RATES, "chat.postMessage", budget.Rate(1_000_000.0, 1_000_000, per_channel=True))


async def file(slack, count: int = COUNT) -> list[str]:
    return [(await slack.request({**PAYOUT, "summary": f"Payout {n}"}))["approvalId"] for n in range(count)]


def posts_per_approval(slack) -> Counter[str]:
    """How many messages Slack holds for each request (by the metadata every review message carries)."""
    return Counter(m["metadata"]["event_payload"]["approval_id"] for m in slack.fake.messages_in(REVIEW))


async def post_jobs(slack) -> list[Job]:
    async with slack.container.db.read() as session:
        return list((await session.scalars(select(Job).where(Job.kind == POST).order_by(Job.id))).all())


async def stored(slack) -> dict[str, str]:
    async with slack.container.db.read() as session:
        return dict((await session.execute(select(SlackMessage.approval_id, SlackMessage.ts))).all())


async def test_a_batch_posts_each_request_once_in_a_few_statements(slack, no_budget):
    ids = await file(slack)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = slack.container.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert await slack.container.worker.run_once() == COUNT  # one claim took them all
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert posts_per_approval(slack) == Counter({approval_id: 1 for approval_id in ids})
    assert len(slack.fake.calls_to("chat.postMessage")) == COUNT
    messages = await stored(slack)
    assert sorted(messages) == sorted(ids)
    assert {m["ts"] for m in slack.fake.messages_in(REVIEW)} == set(messages.values())
    jobs = await post_jobs(slack)
    assert [(job.status, job.attempts) for job in jobs] == [("done", 1)] * COUNT
    # One job at a time took about eleven statements each (its digest check's two, the snapshot's
    # five, the message stored, its attempt and status: 134 for twelve); a batch shares them all,
    # so twelve cost about what one did. (On PostgreSQL the budget's shared state adds its own, per call.)
    budget_calls = COUNT * 3 if slack.container.settings.database_url.startswith("postgresql") else 0
    assert len(statements) <= 16 + budget_calls, len(statements)


async def test_a_deep_queue_is_posted_in_rounds_of_the_post_batch_size(slack, no_budget):
    """More due posts than the worker's round (16) takes of other jobs: one round takes them all, up
    to the post job's batch size (64), and posts each once."""
    deep = 40
    ids = await file(slack, deep)
    assert await slack.container.worker.run_once() == deep
    assert posts_per_approval(slack) == Counter({approval_id: 1 for approval_id in ids})
    assert sorted(await stored(slack)) == sorted(ids)


async def test_a_slack_error_mid_batch_fails_one_job_and_it_is_posted_later_once(slack, clock, no_budget):
    ids = await file(slack)
    slack.fake.fail_next("chat.postMessage", status=503)
    await slack.container.worker.run_once()
    assert len(slack.fake.messages_in(REVIEW)) == COUNT - 1
    [failed] = [job for job in await post_jobs(slack) if job.status == "queued"]
    assert failed.attempts == 1 and failed.last_error  # a failed attempt, retried with back-off

    clock.advance(minutes=5)
    await slack.settle()
    assert posts_per_approval(slack) == Counter({approval_id: 1 for approval_id in ids})
    assert sorted(await stored(slack)) == sorted(ids)
    assert [job.status for job in await post_jobs(slack)] == ["done"] * COUNT


async def test_an_answer_lost_mid_batch_is_adopted_not_posted_again(slack, clock, no_budget):
    ids = await file(slack)
    slack.fake.lose_next_answer("chat.postMessage")  # Slack posts it; the worker hears a 500
    await slack.container.worker.run_once()
    assert len(slack.fake.messages_in(REVIEW)) == COUNT
    assert len(await stored(slack)) == COUNT - 1

    clock.advance(minutes=5)
    await slack.settle()
    assert posts_per_approval(slack) == Counter({approval_id: 1 for approval_id in ids})
    assert len(slack.fake.calls_to("chat.postMessage")) == COUNT
    assert len(slack.fake.calls_to("conversations.history")) == 1  # the retry looked, found, adopted
    messages = await stored(slack)
    assert sorted(messages) == sorted(ids) and set(messages.values()) == {
        m["ts"] for m in slack.fake.messages_in(REVIEW)}


async def test_a_worker_stopped_mid_batch_keeps_the_posts_slack_answered(slack, clock, no_budget):
    """Told to stop while one post's answer is slow: the posts already answered are recorded before
    the jobs are handed back, so the next worker does not post them again."""
    ids = await file(slack)
    slack.fake.delay_next_answer("chat.postMessage", 30)
    worker = slack.container.worker
    running = asyncio.create_task(worker.run_once())
    for _ in range(200):
        if len(slack.fake.messages_in(REVIEW)) == COUNT:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # the quick answers read
    await worker.shutdown()
    await asyncio.gather(running, return_exceptions=True)
    answered = await stored(slack)
    assert len(answered) == COUNT - 1
    assert "queued" in [job.status for job in await post_jobs(slack)]  # the slow one handed back

    successor = Worker(worker.context, worker.registry, clock=worker.clock)
    await successor.drain()
    counts = posts_per_approval(slack)
    assert all(counts[approval_id] == 1 for approval_id in answered)  # none of those posted again
    assert sorted(await stored(slack)) == sorted(ids)
    assert [job.status for job in await post_jobs(slack)] == ["done"] * COUNT


async def test_a_429_mid_batch_defers_that_post_past_retry_after_and_posts_each_once(slack, clock):
    ids = await file(slack)
    slack.fake.fail_next("chat.postMessage", "ratelimited", retry_after=30)
    await slack.settle()
    jobs = await post_jobs(slack)
    limited = [job for job in jobs if "ratelimited" in (job.last_error or "")]
    assert len(limited) == 1 and limited[0].status == "queued" and limited[0].attempts == 0  # not counted
    assert (limited[0].run_at - clock()).total_seconds() >= 30  # Retry-After honoured
    # Paced, not fired at once: our budget (about one a second after a burst of three) and the pause
    # deferred the rest of the batch to a slot each.
    assert len(slack.fake.calls_to("chat.postMessage")) < COUNT
    async with slack.container.db.read() as session:
        outcomes = list((await session.scalars(select(JobAttempt.outcome))).all())
    assert "retry" not in outcomes and "parked" not in outcomes

    for _ in range(4):
        clock.advance(seconds=31)
        await slack.settle()
    assert posts_per_approval(slack) == Counter({approval_id: 1 for approval_id in ids})
    assert all(has_buttons(m) for m in slack.fake.messages_in(REVIEW))
    assert [job.status for job in await post_jobs(slack)] == ["done"] * COUNT
