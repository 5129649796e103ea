"""Slack's budget: requests flooded at a fake Slack that enforces its limits reach the channel
without a 429, a 429 is a deferral (never a failed attempt), retries are spread, and a pause is
logged once."""

import asyncio
import itertools
import logging
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from api.outbox.models import Job, JobAttempt
from tests.fakes.slack import RateLimiter
from tests.slack_helpers import PAYOUT, REVIEW, has_buttons, slack_harness


def real_clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


@pytest.fixture
async def live_slack(make_settings):
    """The service on the real clock with its worker running, against a Slack that enforces its limits."""
    async with slack_harness(make_settings, real_clock) as harness:
        harness.fake.limiter = RateLimiter()
        worker = asyncio.create_task(harness.container.worker.run())
        try:
            yield harness
        finally:
            await harness.container.worker.shutdown()
            await worker


async def jobs(slack, kind):
    async with slack.container.db.read() as session:
        return list((await session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id))).all())


async def attempts(slack, job_id):
    async with slack.container.db.read() as session:
        return list((await session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id)
                                           .order_by(JobAttempt.id))).all())


async def wait_for(check, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_burst_of_requests_reaches_a_rate_limited_channel_without_one_429(live_slack):
    count = 9
    created = [await live_slack.request({**PAYOUT, "summary": f"Payout {n}"}) for n in range(count)]
    started = time.monotonic()

    async def all_posted() -> bool:
        return len([m for m in live_slack.fake.messages_in(REVIEW) if has_buttons(m)]) == count

    await wait_for(all_posted, 30)
    assert live_slack.fake.rate_limited == 0
    assert len(live_slack.fake.calls_to("chat.postMessage")) == count  # once each, no retried 429s
    # Slack allows a short burst, then one a second: the posts were paced, not fired at once.
    assert time.monotonic() - started >= count - 5 - 1
    for approval in created:
        assert (await live_slack.location(approval["approvalId"]))[1]


async def test_a_429_storm_is_deferred_not_counted_and_the_post_goes_when_slack_lets_it(slack, clock):
    storm = 12  # more 429s in a row than a job has attempts
    slack.fake.fail_next("chat.postMessage", "ratelimited", retry_after=1, times=storm)
    created = await slack.request(PAYOUT)
    for _ in range(storm):
        await slack.settle()
        [job] = await jobs(slack, "slack.post_request")
        assert job.status == "queued" and job.attempts == 0
        clock.advance(seconds=60)
    await slack.settle()

    [job] = await jobs(slack, "slack.post_request")
    assert job.status == "done" and job.attempts == 1
    outcomes = [a.outcome for a in await attempts(slack, job.id)]
    assert outcomes == ["deferred"] * storm + ["done"]
    assert has_buttons(await slack.message(created["approvalId"]))


async def test_jobs_rate_limited_together_retry_at_spread_times(slack):
    slack.fake.fail_next("chat.postMessage", "ratelimited", retry_after=30, times=3)
    for n in range(3):
        await slack.request({**PAYOUT, "summary": f"Payout {n}"})
    await slack.settle()
    waiting = await jobs(slack, "slack.post_request")
    assert [job.status for job in waiting] == ["queued"] * 3
    times = sorted(job.run_at for job in waiting)
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert all(gap >= 0.5 for gap in gaps), gaps  # one slot each after the pause, not all at once
    assert (times[0] - min(job.created_at for job in waiting)).total_seconds() >= 30  # Retry-After honoured


async def test_a_pause_is_logged_once_per_burst_of_429s(slack, caplog):
    slack.fake.fail_next("chat.postMessage", "ratelimited", retry_after=30, times=4)
    for n in range(4):
        await slack.request({**PAYOUT, "summary": f"Payout {n}"})
    with caplog.at_level(logging.DEBUG, logger="bot.budget"):
        await slack.settle()
    warnings = [r for r in caplog.records if r.name == "bot.budget" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "chat.postMessage:C0REVIEW" in warnings[0].getMessage()


async def test_a_deep_queue_is_deferred_in_order_holding_its_slots(slack):
    """Nine posts at once: a short burst goes, the rest are deferred to one slot each, a second
    apart, without calling Slack (nothing answered 429, no attempt counted)."""
    slack.fake.limiter = RateLimiter()
    for n in range(9):
        await slack.request({**PAYOUT, "summary": f"Payout {n}"})
    await slack.container.worker.run_once()
    waiting = [job for job in await jobs(slack, "slack.post_request") if job.status == "queued"]
    assert waiting and all(job.attempts == 0 and job.reservation for job in waiting)
    assert slack.fake.rate_limited == 0
    slots = sorted(float(job.reservation.rpartition("@")[2]) for job in waiting)
    assert all(later - earlier >= 0.99 for earlier, later in itertools.pairwise(slots))
