"""`bulk: true`: "Approve all" in a digest, each item its own decision by the person who confirmed."""

import copy
from pathlib import Path

import pytest

from bot.ids import field_block_id, review_actions_block_id
from tests.digest_helpers import BULK, block_button, click_block, click_item, digests, listed_ids, refund, shown
from tests.home_helpers import click_home, open_home
from tests.slack_helpers import (
    APPROVER,
    GROUP_MEMBER,
    REVIEW,
    STRANGER,
    select_input,
    slack_harness,
    text_input,
)
from tests.test_policy_cli import cheqpoint

BULK_POLICY = """
defaults:
  approvers: [UAPPROVER, S0FINANCE]
rules:
  - name: small duplicate refunds
    actions: [issue_refund]
    when: details.amount_cents <= 5000 && details.reason == "duplicate"
    decision: review
    bulk: true
"""


@pytest.fixture
async def slack(make_settings, clock, tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(BULK_POLICY)
    async with slack_harness(make_settings, clock, slack_digest_threshold=5, policy_file=policy) as harness:
        yield harness


async def _confirm(slack, digest, message, *, user=APPROVER):
    await click_block(slack, digest, message, BULK, "approve_all", user=user)
    modal = slack.last_view()
    await slack.submit(modal, {}, user=user)
    await slack.settle()
    return modal


async def test_a_reviewer_clears_a_hundred_small_refunds_in_two_clicks_with_a_hundred_decisions(slack):
    refunds = [await slack.request(refund(n)) for n in range(100)]
    await slack.settle()
    (digest,) = await digests(slack)
    message = slack.fake.message(REVIEW, digest.ts)
    label = block_button(message, BULK, "approve_all")["text"]["text"]
    assert label == "Approve all 100 — $1,200.00 USD total"

    modal = await _confirm(slack, digest, message)  # click 1: Approve all · click 2: the modal's submit
    listing = shown(modal)
    assert "cus_0000" in listing and "cus_0099" in listing  # the confirmation lists what it covers

    statuses = {(await slack.approval(r["approvalId"]))["status"] for r in refunds}
    assert statuses == {"approved"}
    decided = await slack.audit("approval.approved")
    assert len(decided) == 100 and {e.approval_id for e in decided} == {r["approvalId"] for r in refunds}
    assert all(e.actor["id"] == APPROVER for e in decided)
    assert "100 approved" in shown(slack.fake.message(REVIEW, digest.ts))
    assert any("100 of the 100" in m["text"] for m in slack.fake.messages_in(APPROVER))


async def test_a_stale_bulk_click_decides_only_what_it_showed_still_pending(slack):
    refunds = [await slack.request(refund(n)) for n in range(6)]
    await slack.settle()
    (digest,) = await digests(slack)
    seen = copy.deepcopy(slack.fake.message(REVIEW, digest.ts))  # the picture the reviewer is looking at

    # Meanwhile: one item is rejected by someone else, a new one joins the digest.
    await click_item(slack, digest, refunds[0]["approvalId"], "reject", user=GROUP_MEMBER)
    await slack.submit(slack.last_view(), {"note": {"note": {"type": "plain_text_input", "value": "dup"}}},
                       user=GROUP_MEMBER)
    late = await slack.request(refund(77))
    await slack.settle()
    assert late["approvalId"] in listed_ids(slack.fake.message(REVIEW, digest.ts))

    # The old button is clicked: its modal lists only what that picture showed, still pending.
    await click_block(slack, digest, seen, BULK, "approve_all")
    modal = slack.last_view()
    assert "cus_0077" not in shown(modal) and "cus_0000" not in shown(modal)
    await slack.submit(modal, {})
    await slack.settle()
    assert (await slack.approval(refunds[0]["approvalId"]))["status"] == "rejected"
    assert (await slack.approval(late["approvalId"]))["status"] == "pending"
    assert {(await slack.approval(r["approvalId"]))["status"] for r in refunds[1:]} == {"approved"}


async def test_bulk_skips_amounts_above_the_ceiling_and_refuses_strangers(make_settings, clock, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(BULK_POLICY.replace("<= 5000", "<= 900000") + "    bulk_ceiling: 2000\n")
    async with slack_harness(make_settings, clock, slack_digest_threshold=2, policy_file=policy) as slack:
        small = [await slack.request(refund(n, amount=1500)) for n in range(3)]
        large = await slack.request(refund(9, amount=250000))
        await slack.settle()
        (digest,) = await digests(slack)
        message = slack.fake.message(REVIEW, digest.ts)
        assert block_button(message, BULK, "approve_all")["text"]["text"] == "Approve all 3 — $45.00 USD total"

        await click_block(slack, digest, message, BULK, "approve_all", user=STRANGER)
        assert "Only approvers" in slack.ephemerals_to(STRANGER)[-1]
        assert len(slack.fake.calls_to("views.open")) == 0

        await _confirm(slack, digest, message)
        assert {(await slack.approval(r["approvalId"]))["status"] for r in small} == {"approved"}
        assert (await slack.approval(large["approvalId"]))["status"] == "pending"  # one by one, never in bulk


@pytest.mark.parametrize(("rule", "accepted"), [
    ("    when: details.amount_cents <= 5000\n    decision: review\n    bulk: true\n", True),
    ("    when: details.amount_cents <= 500000\n    decision: review\n    bulk: true\n", False),
    ("    decision: review\n    bulk: true\n", False),
    ("    when: details.amount_cents <= 5000 || details.reason == 'fraudulent'\n    decision: review\n"
     "    bulk: true\n", False),
    ("    decision: review\n    bulk: true\n    bulk_ceiling: 50000\n", True),
    ("    decision: approve\n    bulk: true\n", False),
])
def test_policy_check_refuses_bulk_on_large_money_movements(tmp_path, rule, accepted):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - name: refunds\n    actions: [issue_refund]\n" + rule)
    result = cheqpoint("policy", "check", str(policy))
    assert (result.returncode == 0) is accepted, result.stdout + result.stderr
    if not accepted:
        assert "bulk" in result.stdout + result.stderr


async def test_a_stale_bulk_click_leaves_a_request_edited_since_and_each_item_keeps_its_quorum(make_settings, clock,
                                                                                             tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(BULK_POLICY + "    required_approvals: 2\n")
    async with slack_harness(make_settings, clock, slack_digest_threshold=2, policy_file=policy) as slack:
        refunds = [await slack.request(refund(n)) for n in range(4)]
        await slack.settle()
        (digest,) = await digests(slack)
        seen = copy.deepcopy(slack.fake.message(REVIEW, digest.ts))
        edited = refunds[0]["approvalId"]

        # Another approver edits one request from App Home: a new revision, with their vote on it.
        home = await open_home(slack, GROUP_MEMBER)
        await click_home(slack, home, GROUP_MEMBER, review_actions_block_id(edited), "edit")
        await slack.submit(slack.last_view(), {field_block_id("amount_cents"): {"amount": text_input("10.00")},
                                               field_block_id("reason"): {"reason": select_input("duplicate")}},
                           user=GROUP_MEMBER)
        await slack.settle()
        assert (await slack.approval(edited))["revision"] == 2

        await click_block(slack, digest, seen, BULK, "approve_all")
        await slack.submit(slack.last_view(), {})
        await slack.settle()
        after = await slack.approval(edited)
        assert [a["by"]["id"] for a in after["approvals"]] == [GROUP_MEMBER]  # not approved unseen by APPROVER
        for other in refunds[1:]:
            state = await slack.approval(other["approvalId"])
            # One vote each, by the person who clicked: quorum 2 still needs a second approver.
            assert state["status"] == "pending" and [a["by"]["id"] for a in state["approvals"]] == [APPROVER]
