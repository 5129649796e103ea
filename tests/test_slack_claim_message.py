""""I'm on it" on a request's own review message: the claim shows on the message itself."""

import pytest

from tests.digest_helpers import shown
from tests.slack_helpers import APPROVER, GROUP_MEMBER, PAYOUT, STRANGER, has_buttons, slack_harness


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


def _labels(message: dict) -> list[str]:
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    return [e["text"]["text"] for b in actions for e in b["elements"]]


async def test_a_claim_from_the_review_message_shows_on_it_and_warns_a_second_reviewer(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    approval_id = created["approvalId"]
    message = await slack.message(approval_id)
    labels = _labels(message)
    assert labels[:2] == ["Approve", "Reject"] and labels[-1] == "I'm on it"
    assert "Reviewing" not in shown(message)

    response = await slack.click("claim", approval_id, user=APPROVER)
    assert response.status_code == 200
    await slack.settle()
    message = await slack.message(approval_id)
    assert f"Reviewing: <@{APPROVER}>" in shown(message) and message["edits"] >= 1
    assert has_buttons(message)  # still pending: the claim decides nothing

    # Someone else clicks Approve on the same message: warned privately, nothing recorded.
    await slack.click("approve", approval_id, user=GROUP_MEMBER)
    await slack.settle()
    assert "already reviewing" in slack.ephemerals_to(GROUP_MEMBER)[-1]
    assert (await slack.approval(approval_id))["status"] == "pending"


async def test_someone_who_may_not_decide_cannot_claim_from_the_message(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    approval_id = created["approvalId"]

    await slack.click("claim", approval_id, user=STRANGER)
    await slack.settle()
    message = await slack.message(approval_id)
    assert "Reviewing" not in shown(message) and message.get("edits", 0) == 0
    assert slack.ephemerals_to(STRANGER)


async def test_a_decided_message_drops_the_claim_with_the_buttons(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    approval_id = created["approvalId"]
    await slack.click("claim", approval_id, user=APPROVER)
    await slack.settle()
    await slack.click("approve", approval_id, user=APPROVER)
    await slack.settle()
    message = await slack.message(approval_id)
    assert (await slack.approval(approval_id))["status"] == "approved"
    assert not has_buttons(message) and "Reviewing" not in shown(message)
