"""On PostgreSQL, Slack's budget is one for every replica and worker: two processes posting to one
channel together stay within Slack's limit, as one would."""

import asyncio
import itertools
import time
from datetime import UTC, datetime

import pytest

from api.db import Database
from api.main import build_container, running
from bot.budget import POST_MESSAGE, SharedBudgets
from tests.fakes.slack import RateLimiter
from tests.slack_helpers import PAYOUT, REVIEW, has_buttons, slack_harness

pytestmark = pytest.mark.postgres


def real_clock() -> datetime:
    return datetime.now(UTC)


async def test_two_workers_share_one_budget_and_slack_never_answers_429(make_settings):
    async with slack_harness(make_settings, real_clock) as slack:
        slack.fake.limiter = RateLimiter()
        other = build_container(slack.container.settings, clock=real_clock)
        async with running(other, worker=False):
            workers = [slack.container.worker, other.worker]
            for worker in workers:
                worker.batch = 4  # each takes part of the queue, so both post at once
            count = 8
            for n in range(count):
                await slack.request({**PAYOUT, "summary": f"Payout {n}"})
            tasks = [asyncio.create_task(worker.run()) for worker in workers]
            try:
                deadline = time.monotonic() + 30
                while len([m for m in slack.fake.messages_in(REVIEW) if has_buttons(m)]) < count:
                    assert time.monotonic() < deadline, "not every request was posted"
                    await asyncio.sleep(0.1)
            finally:
                for worker in workers:
                    await worker.shutdown()
                await asyncio.gather(*tasks)
        assert slack.fake.rate_limited == 0
        assert len(slack.fake.calls_to("chat.postMessage")) == count


async def test_reservations_from_two_processes_never_share_a_slot(database_url):
    databases = [Database(database_url), Database(database_url)]
    try:
        stores = [SharedBudgets(db) for db in databases]
        now = time.time()
        key = f"chat.postMessage:C{int(now * 1000)}"
        slots = await asyncio.gather(*(store.reserve(key, POST_MESSAGE, now)
                                       for store in itertools.islice(itertools.cycle(stores), 10)))
    finally:
        for db in databases:
            await db.close()
    ordered = sorted(slot - now for slot in slots)
    assert ordered[:POST_MESSAGE.burst] == pytest.approx([0.0] * POST_MESSAGE.burst, abs=1e-3)
    # After the burst, one a second, whichever process asked.
    after_burst = [float(n) for n in range(1, 10 - POST_MESSAGE.burst + 1)]
    assert ordered[POST_MESSAGE.burst:] == pytest.approx(after_burst, abs=1e-3)
