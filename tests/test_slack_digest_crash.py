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


def offering(slack, approval_id: str) -> list[str]:
    """The ts of every message in the review channel that shows this request's buttons."""
    return [m["ts"] for m in slack.fake.messages_in(REVIEW)
            if not m.get("thread_ts") and approval_id in listed_ids(m)]


async def test_a_review_message_posted_unheard_is_not_digested_when_the_queue_turns_deep(slack, clock):
    # Slack posts the first request's own message, but the answer never arrives (the worker died).
    slack.fake.lose_next_answer("chat.postMessage")
    first = (await slack.request(refund(0)))["approvalId"]
    await slack.settle()
    [posted] = offering(slack, first)
    # Meanwhile the queue turns deep and its group's digest opens; then the first post is retried.
    [await slack.request(refund(n)) for n in range(1, 6)]
    for _ in range(3):
        clock.advance(seconds=10)
        await slack.settle()
    # Still offered in one place only: the message Slack posted, adopted, not a digest item beside it.
    assert offering(slack, first) == [posted]
    assert (await slack.location(first))[1] == posted

    assert (await slack.click("approve", first)).status_code == 200
    await slack.settle()
    assert offering(slack, first) == []  # decided: no buttons left anywhere
