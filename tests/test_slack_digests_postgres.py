"""Digests with two replicas on one PostgreSQL database: one digest per group, posted once."""

import asyncio

import pytest

from api.main import build_container, running
from tests.digest_helpers import click_block, digests, listed_ids, refund, shown
from tests.slack_helpers import PAYOUT, REVIEW, slack_harness

pytestmark = pytest.mark.postgres


async def test_two_replicas_draining_one_deep_queue_make_one_digest_per_group(make_settings, clock):
    async with slack_harness(make_settings, clock, slack_digest_threshold=3) as slack:
        other = build_container(slack.container.settings, clock=clock)
        async with running(other, worker=False):
            refunds = [await slack.request(refund(n)) for n in range(30)]
            payouts = [await slack.request(PAYOUT) for _ in range(5)]
            for _ in range(3):  # both workers at once, racing for the same jobs and digests
                await asyncio.gather(slack.container.worker.drain(), other.worker.drain())

            found = await digests(slack)
            assert sorted(d.action for d in found) == ["create_payout", "issue_refund"]
            top_level = [m for m in slack.fake.messages_in(REVIEW) if not m.get("thread_ts")]
            assert len(top_level) == 2  # no group posted twice, no request posted on its own
            by_action = {d.action: d for d in found}
            refund_message = slack.fake.message(REVIEW, by_action["issue_refund"].ts)
            assert "Page 1 of 2" in shown(refund_message)
            assert set(listed_ids(slack.fake.message(REVIEW, by_action["create_payout"].ts))) == {
                p["approvalId"] for p in payouts}

            # A page turn handled by one replica, rendered by whichever worker gets there first.
            await click_block(slack, by_action["issue_refund"], refund_message, "digest.pages", "digest_page.next")
            await asyncio.gather(slack.container.worker.drain(), other.worker.drain())
            second_page = listed_ids(slack.fake.message(REVIEW, by_action["issue_refund"].ts))
            assert second_page == [r["approvalId"] for r in refunds[20:]]
