"""One approval binds one thing (Slack side): votes bind a revision, stale clicks and forms change
nothing, approvers are resolved at decision time, and every refusal is in the audit trail.

Each attack is performed through signed requests into /slack/events against the fake Slack Web API.
"""

import json
from pathlib import Path

import pytest

from bot.ids import ButtonRef, field_block_id, review_actions_block_id
from tests.conftest import REFUND
from tests.fakes.stripe import FakeStripe
from tests.slack_helpers import (
    SlackHarness,
    block_actions,
    button_value,
    interactivity_body,
    slack_harness,
    text_input,
)

ALICE, BOB, MALLORY = "UALICE", "UBOB", "UMALLORY"
AMOUNT = field_block_id("amount_cents")


def quorum_of_two(tmp_path: Path) -> str:
    path = tmp_path / "quorum.yaml"
    path.write_text("defaults:\n  approvers: [UALICE, UBOB]\n  required_approvals: 2\n")
    return str(path)


async def click_value(slack: SlackHarness, approval_id: str, value: str, *, user: str) -> None:
    """A click on the message as it once was: its button value names the revision it showed."""
    channel, ts = await slack.location(approval_id)
    payload = block_actions("approve", value, review_actions_block_id(approval_id), user=user, channel=channel,
                            message_ts=ts)
    response = await slack.send(interactivity_body(payload))
    assert response.status_code == 200


async def current_button(slack: SlackHarness, approval_id: str, action: str = "approve") -> str:
    return button_value((await slack.message(approval_id))["blocks"], approval_id, action)


async def test_an_edit_resets_the_quorum_and_a_stale_click_changes_nothing(make_settings, clock, tmp_path):
    with FakeStripe() as stripe:
        charge = stripe.add_charge(amount=1_000_000, currency="usd")
        details = {**REFUND["details"], "charge_id": charge["id"], "amount_cents": 50_000}
        async with slack_harness(make_settings, clock, approvers=[ALICE, BOB], policy_file=quorum_of_two(tmp_path),
                                 stripe_secret_key="sk_test_123", stripe_api_base=stripe.url) as slack:
            approval_id = (await slack.request({**REFUND, "details": details}))["approvalId"]
            await slack.settle()
            old_value = await current_button(slack, approval_id)
            assert ButtonRef.loads(old_value).version == 1

            # Alice approves $500: one vote of two.
            await slack.click("approve", approval_id, user=ALICE)
            assert "1 of 2" in slack.ephemerals_to(ALICE)[-1]
            await slack.settle()
            # A vote does not change the revision: the refreshed message's buttons still name 1.
            assert ButtonRef.loads(await current_button(slack, approval_id)).version == 1

            # Bob edits the amount to $5,000 and approves it: a new revision, Alice's vote no longer counts.
            await slack.click("edit", approval_id, user=BOB)
            response = await slack.submit(slack.last_view(), {AMOUNT: {"amount": text_input("5000.00")},
                                                              "note": {"note": text_input("Whole order")}}, user=BOB)
            assert response.status_code == 200 and not response.content.strip(b"{}")
            await slack.settle()
            state = await slack.approval(approval_id)
            assert state["status"] == "pending", "Alice's vote for $500 must not count toward $5,000"
            assert state["revision"] == 2
            assert [vote["by"]["id"] for vote in state["approvals"]] == [BOB]
            assert state["modifiedDetails"]["amount_cents"] == 500_000

            # The message says why the votes were reset, shows the new amount, and points at revision 2.
            message = await slack.message(approval_id)
            shown = json.dumps(message["blocks"], ensure_ascii=False)
            assert "votes were reset" in shown and "<@UBOB>" in shown and "$5,000.00" in shown
            assert ButtonRef.loads(await current_button(slack, approval_id)).version == 2
            # … and the approvers are asked again, in the message's thread.
            channel, ts = await slack.location(approval_id)
            (asked,) = [m for m in slack.fake.messages_in(channel) if m["thread_ts"] == ts]
            assert "<@UALICE> <@UBOB>" in asked["text"] and "Votes were reset" in asked["text"]

            # Alice clicks Approve on the message as she saw it ($500): refused as stale, nothing recorded.
            await click_value(slack, approval_id, old_value, user=ALICE)
            assert "changed" in slack.ephemerals_to(ALICE)[-1] and "$5,000.00" in slack.ephemerals_to(ALICE)[-1]
            state = await slack.approval(approval_id)
            assert state["status"] == "pending" and len(state["approvals"]) == 1
            stale = [e for e in await slack.audit("decision.refused") if e.detail["reason"] == "stale revision"]
            assert [(e.actor["id"], e.detail["seen"], e.detail["current"]) for e in stale] == [(ALICE, 1, 2)]
            assert stripe.refunds == []

            # Only a fresh approval of revision 2 executes it, with exactly the payload approved.
            fresh_value = await current_button(slack, approval_id)
            await slack.click("approve", approval_id, user=ALICE)
            await slack.settle()
            final = await slack.approval(approval_id)
            assert final["status"] == "approved" and final["execution"]["status"] == "succeeded"
            assert sorted(vote["by"]["id"] for vote in final["approvals"]) == [ALICE, BOB]
            assert [refund["amount"] for refund in stripe.refunds] == [500_000]
            revised = await slack.audit("approval.revised")
            assert [(e.actor["id"], e.detail["votesReset"]) for e in revised] == [(BOB, [ALICE])]

            # A click after the end is told so, and audited as well.
            await click_value(slack, approval_id, fresh_value, user=BOB)
            assert "already approved" in slack.ephemerals_to(BOB)[-1]
            late = [e for e in await slack.audit("decision.refused") if e.detail["reason"] == "already approved"]
            assert [e.actor["id"] for e in late] == [BOB]


async def test_a_form_opened_on_an_older_revision_is_refused_in_the_modal(make_settings, clock, tmp_path):
    async with slack_harness(make_settings, clock, approvers=[ALICE, BOB],
                             policy_file=quorum_of_two(tmp_path)) as slack:
        approval_id = (await slack.request({**REFUND, "execute": False}))["approvalId"]
        await slack.settle()
        await slack.click("reject", approval_id, user=ALICE)
        alice_form = slack.last_view()
        await slack.click("edit", approval_id, user=BOB)
        await slack.submit(slack.last_view(), {AMOUNT: {"amount": text_input("100.00")},
                                               "note": {"note": text_input("")}}, user=BOB)
        assert (await slack.approval(approval_id))["revision"] == 2

        # Alice's reject form was opened on revision 1: it changes nothing and says why.
        response = await slack.submit(alice_form, {"note": {"note": text_input("No refunds today")}}, user=ALICE)
        body = response.json()
        assert body["response_action"] == "errors" and "changed" in body["errors"]["note"]
        assert (await slack.approval(approval_id))["status"] == "pending"


@pytest.mark.parametrize("metadata", ["not json", "{}", '{"approval_id": "apr_x", "version": "two"}', "[1]"])
async def test_a_signed_submission_with_foreign_metadata_gets_a_modal_error(make_settings, clock, metadata):
    async with slack_harness(make_settings, clock) as slack:
        approval_id = (await slack.request({**REFUND, "execute": False}))["approvalId"]
        await slack.settle()
        await slack.click("reject", approval_id)
        view = {**slack.last_view(), "private_metadata": metadata}
        response = await slack.submit(view, {"note": {"note": text_input("No")}})
        assert response.status_code == 200, response.text
        assert response.json()["response_action"] == "errors"
        assert (await slack.approval(approval_id))["status"] == "pending"


async def test_someone_removed_from_the_approvers_can_no_longer_decide_earlier_requests(make_settings, clock):
    async with slack_harness(make_settings, clock, approvers=[ALICE, BOB]) as before:
        approval_id = (await before.request({**REFUND, "execute": False}))["approvalId"]
        await before.settle()
        value = await current_button(before, approval_id)
        channel, ts = await before.location(approval_id)

    # The app is rebuilt with new settings on the same database: Alice is no longer an approver.
    async with slack_harness(make_settings, clock, approvers=[BOB]) as after:
        payload = block_actions("approve", value, review_actions_block_id(approval_id), user=ALICE,
                                channel=channel, message_ts=ts)
        assert (await after.send(interactivity_body(payload))).status_code == 200
        assert "Only approvers" in after.ephemerals_to(ALICE)[-1]
        state = (await after.container.approvals.get(None, approval_id))
        assert state.status == "pending" and state.decisions == []
        refused = await after.audit("decision.refused")
        assert [(e.actor["id"], e.detail["reason"]) for e in refused] == [(ALICE, "not an approver")]


async def test_duplicate_votes_and_refused_edits_are_audited_with_who(make_settings, clock, tmp_path):
    async with slack_harness(make_settings, clock, approvers=[ALICE, BOB],
                             policy_file=quorum_of_two(tmp_path)) as slack:
        approval_id = (await slack.request({**REFUND, "execute": False}))["approvalId"]
        await slack.settle()
        await slack.click("approve", approval_id, user=ALICE)
        await slack.click("approve", approval_id, user=ALICE)
        assert "already approved" in slack.ephemerals_to(ALICE)[-1]
        duplicates = await slack.audit("decision.duplicate")
        assert [(e.actor["id"], e.detail["revision"]) for e in duplicates] == [(ALICE, 1)]

        # A payout may only be lowered: Bob's raise is refused in the modal and audited.
        payout = {"action": "create_payout", "summary": "Payout", "execute": False,
                  "details": {"amount_cents": 50_000, "currency": "usd"}}
        payout_id = (await slack.request(payout))["approvalId"]
        await slack.settle()
        await slack.click("edit", payout_id, user=BOB)
        response = await slack.submit(slack.last_view(), {AMOUNT: {"amount": text_input("900.00")},
                                                          "note": {"note": text_input("")}}, user=BOB)
        assert response.json()["response_action"] == "errors"
        refused = await slack.audit("decision.edit_refused")
        assert [(e.approval_id, e.actor["id"]) for e in refused] == [(payout_id, BOB)]
        assert (await slack.approval(payout_id))["revision"] == 1


async def test_a_stranger_is_refused_and_the_core_refuses_too(make_settings, clock):
    """Slack's check and the decision service's are one function: calling the service directly as a
    non-approver raises, and nothing is recorded."""
    from api.approvals.actors import Actor
    from api.approvals.authority import NotAnApprover

    async with slack_harness(make_settings, clock) as slack:
        approval_id = (await slack.request({**REFUND, "execute": False}))["approvalId"]
        with pytest.raises(NotAnApprover, match=MALLORY):
            await slack.container.decisions.decide(approval_id, Actor("slack_user", MALLORY), "approve")
        assert (await slack.approval(approval_id))["approvals"] == []
        (refused,) = await slack.audit("decision.refused")
        assert refused.actor["id"] == MALLORY


async def test_the_current_policy_rule_names_who_decides(make_settings, clock, tmp_path):
    """The rule named by the request, as the policy reads now: a changed rule moves the right at once."""
    rule = "rules:\n  - name: refunds\n    actions: [issue_refund]\n    decision: review\n    approvers: [{}]\n"
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(rule.format(BOB))
    second.write_text(rule.format(ALICE))
    async with slack_harness(make_settings, clock, approvers=[ALICE, BOB], policy_file=str(first)) as before:
        approval_id = (await before.request({**REFUND, "execute": False}))["approvalId"]
        await before.settle()
        value = await current_button(before, approval_id)
        await click_value(before, approval_id, value, user=ALICE)
        assert "Only approvers" in before.ephemerals_to(ALICE)[-1]  # the rule names Bob alone

    async with slack_harness(make_settings, clock, approvers=[ALICE, BOB], policy_file=str(second)) as after:
        channel, ts = await after.location(approval_id)
        for user in (BOB, ALICE):
            payload = block_actions("approve", value, review_actions_block_id(approval_id), user=user,
                                    channel=channel, message_ts=ts)
            await after.send(interactivity_body(payload))
        assert "Only approvers" in after.ephemerals_to(BOB)[-1]
        state = await after.container.approvals.get(None, approval_id)
        assert state.status == "approved" and state.decided_by["id"] == ALICE
