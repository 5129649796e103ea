"""Claims: "I'm on it" shows who is reviewing; a second reviewer is warned before deciding."""

import pytest

from tests.digest_helpers import click_item, digests, refund, shown
from tests.slack_helpers import (
    APPROVER,
    GROUP_MEMBER,
    REVIEW,
    STRANGER,
    block_actions,
    interactivity_body,
    slack_harness,
)


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock, slack_digest_threshold=3) as harness:
        yield harness


def _anyway_button(slack, user: str) -> tuple[str, str, str]:
    warning = [e for e in slack.fake.ephemerals if e["user"] == user and e.get("blocks")][-1]
    actions = next(b for b in warning["blocks"] if b["type"] == "actions")
    button = actions["elements"][0]
    return button["action_id"], button["value"], actions["block_id"]


async def test_a_claim_shows_in_the_digest_and_warns_a_second_reviewer_who_may_still_decide(slack):
    refunds = [await slack.request(refund(n)) for n in range(4)]
    await slack.settle()
    (digest,) = await digests(slack)
    target = refunds[1]["approvalId"]

    await click_item(slack, digest, target, "claim", user=APPROVER)
    await slack.settle()
    assert f"Reviewing: <@{APPROVER}>" in shown(slack.fake.message(REVIEW, digest.ts))

    # A second reviewer clicks Approve: warned privately, nothing recorded yet.
    await click_item(slack, digest, target, "approve", user=GROUP_MEMBER)
    assert "already reviewing" in slack.ephemerals_to(GROUP_MEMBER)[-1]
    assert (await slack.approval(target))["status"] == "pending"
    assert await slack.audit("approval.approved") == []

    # They decide anyway, from the warning's button.
    action_id, value, block_id = _anyway_button(slack, GROUP_MEMBER)
    assert action_id == "approve_anyway"
    payload = block_actions(action_id, value, block_id, user=GROUP_MEMBER, channel=REVIEW, message_ts=digest.ts)
    await slack.send(interactivity_body(payload))
    await slack.settle()
    approved = await slack.approval(target)
    assert approved["status"] == "approved" and approved["decidedBy"]["id"] == GROUP_MEMBER


async def test_the_claimant_is_not_warned_about_their_own_claim(slack):
    refunds = [await slack.request(refund(n)) for n in range(4)]
    await slack.settle()
    (digest,) = await digests(slack)
    target = refunds[0]["approvalId"]
    await click_item(slack, digest, target, "claim", user=APPROVER)
    await click_item(slack, digest, target, "approve", user=APPROVER)
    await slack.settle()
    assert (await slack.approval(target))["status"] == "approved"


async def test_someone_who_may_not_decide_cannot_claim(slack):
    refunds = [await slack.request(refund(n)) for n in range(4)]
    await slack.settle()
    (digest,) = await digests(slack)
    await click_item(slack, digest, refunds[0]["approvalId"], "claim", user=STRANGER)
    await slack.settle()
    assert "Only approvers" in slack.ephemerals_to(STRANGER)[-1]
    assert "Reviewing" not in shown(slack.fake.message(REVIEW, digest.ts))


async def test_a_second_reviewer_is_warned_before_rejecting_a_claimed_request(slack):
    refunds = [await slack.request(refund(n)) for n in range(4)]
    await slack.settle()
    (digest,) = await digests(slack)
    target = refunds[2]["approvalId"]
    await click_item(slack, digest, target, "claim", user=GROUP_MEMBER)
    await click_item(slack, digest, target, "reject", user=APPROVER)
    assert "already reviewing" in slack.ephemerals_to(APPROVER)[-1]
    assert slack.fake.calls_to("views.open") == []  # no reject form until they choose to go on
    action_id, value, block_id = _anyway_button(slack, APPROVER)
    payload = block_actions(action_id, value, block_id, user=APPROVER, channel=REVIEW, message_ts=digest.ts)
    await slack.send(interactivity_body(payload))
    assert slack.last_view()["callback_id"] == "reject_modal"
