"""The "review queue is deep; requests … now join digest …" line is written once, when the digest
opens, not once for every post job that raced to open it (on PostgreSQL, thirty requests racing in
two workers wrote it thirty times; every one but the first found the digest already there)."""

import asyncio
import logging
from collections import Counter

import pytest

from api.main import build_container, running
from tests.digest_helpers import digests, refund
from tests.slack_helpers import PAYOUT, slack_harness

OPENED = "now join digest"


def _opened(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    return Counter(str(r.args[-1]) for r in caplog.records
                   if r.name == "bot.digests" and OPENED in r.getMessage())


async def test_the_digest_is_announced_once_when_it_opens(make_settings, clock, caplog):
    caplog.set_level(logging.INFO, logger="bot.digests")
    async with slack_harness(make_settings, clock, slack_digest_threshold=3) as slack:
        other = build_container(slack.container.settings, clock=clock)
        async with running(other, worker=False):
            for n in range(30):
                await slack.request(refund(n))
            for _ in range(5):
                await slack.request(PAYOUT)
            for _ in range(3):  # two workers at once, as two replicas or a busy worker's concurrent jobs
                await asyncio.gather(slack.container.worker.drain(), other.worker.drain())
            found = await digests(slack)
    assert len(found) == 2
    assert _opened(caplog) == {d.id: 1 for d in found}
