"""App Home as the approver's own queue: oldest first, paginated, filtered, with its actions."""

import json

import pytest

from api.connections import service as connections
from bot.blocks.home import FILTERS_BLOCK_ID, PAGE_NEXT, PAGER_BLOCK_ID
from bot.ids import review_actions_block_id
from tests.digest_helpers import refund
from tests.home_helpers import click_home, home_ids, open_home
from tests.slack_helpers import APPROVER, GROUP_MEMBER, PAYOUT, REVIEW, slack_harness


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock, slack_digest_threshold=100) as harness:
        yield harness


async def test_the_queue_is_oldest_first_and_paginated(slack):
    created = []
    for n in range(23):
        created.append(await slack.request(refund(n)))
        slack.container.clock.advance(seconds=1)  # type: ignore[attr-defined]
    home = await open_home(slack, APPROVER)
    assert home_ids(home) == [c["approvalId"] for c in created[:10]]
    assert "Waiting for review (23)" in json.dumps(home["blocks"]) and "Page 1 of 3" in json.dumps(home["blocks"])

    await click_home(slack, home, APPROVER, PAGER_BLOCK_ID, PAGE_NEXT)
    home = slack.fake.home_views[APPROVER]
    assert home_ids(home) == [c["approvalId"] for c in created[10:20]]


async def test_filters_by_connection_and_action(slack):
    other = await slack.container.db.write(lambda session: connections.create(session, "billing-agent"))
    refund_request = await slack.request(refund(1))
    payout = await slack.request(PAYOUT)
    response = await slack.http.post("/v1/approvals", json=refund(2), headers={"Authorization": f"Bearer {other.key}"})
    billing = response.json()
    home = await open_home(slack, APPROVER)
    assert set(home_ids(home)) == {refund_request["approvalId"], payout["approvalId"], billing["approvalId"]}

    await click_home(slack, home, APPROVER, FILTERS_BLOCK_ID, "home_action",
                     selected_option={"value": "issue_refund", "text": {"type": "plain_text", "text": "x"}})
    home = slack.fake.home_views[APPROVER]
    assert set(home_ids(home)) == {refund_request["approvalId"], billing["approvalId"]}

    # The filters combine: the action filter stays while the Connection is chosen.
    await click_home(slack, home, APPROVER, FILTERS_BLOCK_ID, "home_connection",
                     selected_option={"value": other.connection.id, "text": {"type": "plain_text", "text": "x"}})
    assert home_ids(slack.fake.home_views[APPROVER]) == [billing["approvalId"]]


async def test_what_they_already_approved_leaves_their_queue_but_not_the_others(make_settings, clock, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  approvers: [UAPPROVER, S0FINANCE]\n  required_approvals: 2\n")
    async with slack_harness(make_settings, clock, policy_file=policy) as slack:
        created = await slack.request(PAYOUT)
        await slack.settle()
        home = await open_home(slack, APPROVER)
        await click_home(slack, home, APPROVER, review_actions_block_id(created["approvalId"]), "approve")
        await slack.settle()
        assert home_ids(slack.fake.home_views[APPROVER]) == []
        assert home_ids(await open_home(slack, GROUP_MEMBER)) == [created["approvalId"]]


async def test_a_claim_from_app_home_is_told_in_the_requests_thread_and_shown(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    _, ts = await slack.location(created["approvalId"])
    home = await open_home(slack, APPROVER)
    await click_home(slack, home, APPROVER, review_actions_block_id(created["approvalId"]), "claim")
    replies = [m for m in slack.fake.messages_in(REVIEW) if m.get("thread_ts") == ts]
    assert any(f"<@{APPROVER}> is reviewing" in m["text"] for m in replies)
    assert f"reviewing: <@{APPROVER}>" in json.dumps((await open_home(slack, GROUP_MEMBER))["blocks"])
