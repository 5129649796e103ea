"""A digest whose post was answered with a lost reply is found by its metadata, not posted twice."""

import pytest

from tests.digest_helpers import digest_messages, digests, listed_ids, refund
from tests.slack_helpers import REVIEW, has_buttons, slack_harness


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock, slack_digest_threshold=3) as harness:
        yield harness


async def test_a_digest_post_whose_answer_was_lost_is_adopted_not_posted_again(slack, clock):
    slack.fake.lose_next_answer("chat.postMessage")
    refunds = [await slack.request(refund(n)) for n in range(5)]
    await slack.settle()
    assert len(digest_messages(slack)) == 1  # Slack posted it; we never heard the ts

    for _ in range(3):
        clock.advance(seconds=10)
        await slack.settle()
    [message] = digest_messages(slack)
    [digest] = await digests(slack)
    assert digest.ts == message["ts"]
    assert message["metadata"] == {"event_type": "cheqpoint_digest", "event_payload": {"digest_id": digest.id}}
    assert set(listed_ids(message)) == {r["approvalId"] for r in refunds} and has_buttons(message)
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    assert slack.fake.calls_to("conversations.history")[-1]["channel"] == REVIEW


async def test_a_digest_adopted_after_a_lost_answer_keeps_following_its_items(slack, clock):
    slack.fake.lose_next_answer("chat.postMessage")
    [await slack.request(refund(n)) for n in range(4)]
    await slack.settle()
    clock.advance(seconds=10)
    await slack.settle()
    late = await slack.request(refund(99))
    await slack.settle()
    [message] = digest_messages(slack)
    assert late["approvalId"] in listed_ids(message) and message["edits"] >= 1
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
