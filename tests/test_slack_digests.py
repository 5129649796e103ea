"""Digests: a deep review queue becomes one message per group, driven over the real Slack wire."""

import pytest

from bot.blocks.digest import PAGE_NEXT, PAGER_BLOCK_ID
from tests.digest_helpers import click_block, click_item, digest_messages, digests, listed_ids, refund, shown
from tests.slack_helpers import PAYOUT, REVIEW, has_buttons, slack_harness


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock, slack_digest_threshold=3) as harness:
        yield harness


async def test_a_deep_queue_becomes_one_digest_per_group_not_a_wall_of_messages(slack):
    refunds = [await slack.request(refund(n)) for n in range(8)]
    payouts = [await slack.request(PAYOUT) for _ in range(2)]
    await slack.settle()

    top_level = [m for m in slack.fake.messages_in(REVIEW) if not m.get("thread_ts")]
    assert len(top_level) == 2  # one digest for the refunds, one for the payouts: not ten messages
    found = await digests(slack)
    by_action = {d.action: d for d in found}
    refund_digest = slack.fake.message(REVIEW, by_action["issue_refund"].ts)
    assert set(listed_ids(refund_digest)) == {r["approvalId"] for r in refunds}
    text = shown(refund_digest)
    assert "$12.00 USD" in text and "cus_0003" in text and "waiting" in text
    labels = {e["text"]["text"] for b in refund_digest["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert {"Approve", "Reject", "Details", "I'm on it"} <= labels
    payout_digest = slack.fake.message(REVIEW, by_action["create_payout"].ts)
    assert set(listed_ids(payout_digest)) == {p["approvalId"] for p in payouts}

    # A new request of the group joins the open digest by chat.update, not a new message.
    late = await slack.request(refund(99))
    await slack.settle()
    assert len([m for m in slack.fake.messages_in(REVIEW) if not m.get("thread_ts")]) == 2
    refund_digest = slack.fake.message(REVIEW, by_action["issue_refund"].ts)
    assert late["approvalId"] in listed_ids(refund_digest) and refund_digest["edits"] >= 1


async def test_an_item_decided_in_the_digest_leaves_it_and_is_counted(slack):
    refunds = [await slack.request(refund(n)) for n in range(5)]
    await slack.settle()
    (digest,) = await digests(slack)
    first = refunds[0]["approvalId"]

    await click_item(slack, digest, first, "approve")
    await slack.settle()
    assert (await slack.approval(first))["status"] == "approved"
    message = slack.fake.message(REVIEW, digest.ts)
    assert first not in listed_ids(message) and len(listed_ids(message)) == 4
    assert "1 approved" in shown(message)

    # Decided elsewhere (the operator's CLI path uses the same core): the digest follows.
    for other in refunds[1:]:
        await click_item(slack, digest, other["approvalId"], "approve")
    await slack.settle()
    message = slack.fake.message(REVIEW, digest.ts)
    assert not has_buttons(message) and "5 approved" in shown(message)
    assert (await digests(slack))[0].open_key is None  # closed: the next deep queue starts a new one


async def test_below_the_threshold_each_request_keeps_its_own_message(make_settings, clock):
    async with slack_harness(make_settings, clock, slack_digest_threshold=10) as slack:
        for n in range(4):
            await slack.request(refund(n))
        await slack.settle()
        assert len([m for m in slack.fake.messages_in(REVIEW) if not m.get("thread_ts")]) == 4
        assert await digests(slack) == [] and digest_messages(slack) == []


async def test_a_digest_longer_than_block_kits_limit_is_paginated(slack):
    refunds = [await slack.request(refund(n)) for n in range(45)]
    await slack.settle()
    (digest,) = await digests(slack)
    message = slack.fake.message(REVIEW, digest.ts)
    assert len(message["blocks"]) <= 50  # the fake refuses more, as Slack does
    first_page = listed_ids(message)
    assert first_page == [r["approvalId"] for r in refunds[:20]]  # oldest first
    assert "Page 1 of 3" in shown(message)

    await click_block(slack, digest, message, PAGER_BLOCK_ID, PAGE_NEXT)
    await slack.settle()
    message = slack.fake.message(REVIEW, digest.ts)
    assert listed_ids(message) == [r["approvalId"] for r in refunds[20:40]] and "Page 2 of 3" in shown(message)


async def test_a_deleted_digest_message_is_posted_again(slack):
    for n in range(5):
        await slack.request(refund(n))
    await slack.settle()
    (digest,) = await digests(slack)
    del slack.fake.messages[REVIEW][digest.ts]  # someone deleted it in Slack

    await slack.request(refund(50))
    await slack.settle()
    (again,) = await digests(slack)
    assert again.ts != digest.ts and len(listed_ids(slack.fake.message(REVIEW, again.ts))) == 6
