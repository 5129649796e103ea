"""The reviewer's experience end to end: signed requests into /slack/events, a fake Slack Web API."""

import asyncio
import json
import time

import pytest

from api.approvals.actors import Actor
from bot.ids import field_block_id
from tests.conftest import REFUND
from tests.fakes.stripe import FakeStripe
from tests.slack_helpers import (
    APPROVER,
    GROUP,
    GROUP_MEMBER,
    PAYOUT,
    REVIEW,
    STRANGER,
    block_actions,
    button_value,
    event_callback,
    eventually,
    has_buttons,
    interactivity_body,
    select_input,
    slack_harness,
    text_input,
)

AMOUNT = field_block_id("amount_cents")


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


async def test_request_edit_and_approve_end_to_end(make_settings, clock):
    with FakeStripe() as stripe:
        charge = stripe.add_charge(amount=34900, currency="usd")
        details = {**REFUND["details"], "charge_id": charge["id"]}
        async with slack_harness(make_settings, clock, stripe_secret_key="sk_test_123",
                                 stripe_api_base=stripe.url) as slack:
            created = await slack.request({**REFUND, "details": details})
            await slack.settle()

            # The review message: the facts, the money in words, the buttons.
            message = await slack.message(created["approvalId"])
            shown = json.dumps(message["blocks"], ensure_ascii=False)
            assert "$349.00 USD" in shown and "support-agent" in shown and "TEST MODE" in shown
            assert "duplicate charge within dispute window" in shown
            labels = [e["text"]["text"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
            assert labels[:3] == ["Approve", "Reject", "Edit"] and labels[3:] == ["I'm on it"]

            # Someone who is not an approver is refused, privately, and nothing is recorded.
            await slack.click("approve", created["approvalId"], user=STRANGER)
            assert "Only approvers" in slack.ephemerals_to(STRANGER)[-1]
            assert (await slack.approval(created["approvalId"]))["status"] == "pending"
            refused = await slack.audit("decision.refused")
            assert [entry.actor["id"] for entry in refused] == [STRANGER]

            # An approver edits the amount down and approves in the modal.
            await slack.click("edit", created["approvalId"])
            view = slack.last_view()
            amount_block = field_block_id("amount_cents")
            assert any(b.get("block_id") == amount_block for b in view["blocks"])
            response = await slack.submit(view, {amount_block: {"amount": text_input("174.50")},
                                                 "note": {"note": text_input("Half, per policy.")}})
            assert response.status_code == 200 and not response.content.strip(b"{}")
            await slack.settle()

            final = await slack.approval(created["approvalId"])
            assert final["status"] == "approved"
            assert final["modifiedDetails"] == {**details, "amount_cents": 17450}
            assert final["changes"] == {"amount_cents": {"from": 34900, "to": 17450}}
            assert final["decidedBy"] == {"type": "slack_user", "id": APPROVER, "name": APPROVER.lower()}
            assert stripe.refunds[0]["amount"] == 17450

            message = await slack.message(created["approvalId"])
            shown = json.dumps(message["blocks"], ensure_ascii=False)
            assert not has_buttons(message)
            assert f"<@{APPROVER}>" in shown and "Half, per policy." in shown
            assert "$349.00 USD → $174.50 USD" in shown
            assert "succeeded" in shown and stripe.refunds[0]["id"] in shown
            assert [m["channel"] for m in slack.fake.calls_to("chat.update")] == [REVIEW] * len(
                slack.fake.calls_to("chat.update"))


async def test_a_bad_signature_or_an_old_timestamp_is_refused(slack):
    created = await slack.request({**REFUND, "execute": False})
    await slack.settle()
    channel, ts = await slack.location(created["approvalId"])
    value = button_value(slack.fake.message(channel, ts)["blocks"], created["approvalId"], "approve")
    body = interactivity_body(block_actions("approve", value, f"review.{created['approvalId']}", user=APPROVER,
                                            channel=channel, message_ts=ts))
    assert (await slack.send(body, secret="not-the-secret")).status_code == 401
    assert (await slack.send(body, timestamp=time.time() - 6 * 60)).status_code == 401
    assert (await slack.approval(created["approvalId"]))["status"] == "pending"
    # The same request, properly signed and fresh, is taken.
    assert (await slack.send(body)).status_code == 200
    assert (await slack.approval(created["approvalId"]))["status"] == "approved"


@pytest.mark.parametrize(("typed", "problem"), [
    ("abc", "is not a number"),
    ("1.001", "at most 2 decimal places"),
    ("0", "greater than zero"),
    ("500.01", "can only be lowered"),
])
async def test_the_edit_modal_answers_bad_amounts_in_place(slack, typed, problem):
    created = await slack.request(PAYOUT)
    await slack.settle()
    await slack.click("edit", created["approvalId"])
    view = slack.last_view()
    response = await slack.submit(view, {AMOUNT: {"amount": text_input(typed)},
                                         field_block_id("method"): {"method": select_input("standard")}})
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert problem in answer["errors"][AMOUNT]
    assert (await slack.approval(created["approvalId"]))["status"] == "pending"


async def test_a_payout_edit_changes_only_what_was_changed(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    await slack.click("edit", created["approvalId"])
    response = await slack.submit(slack.last_view(), {AMOUNT: {"amount": text_input("500.00")},
                                                      field_block_id("method"): {"method": select_input("instant")}})
    assert response.status_code == 200 and not response.content.strip(b"{}")
    final = await slack.approval(created["approvalId"])
    assert final["changes"] == {"method": {"from": "standard", "to": "instant"}}
    assert final["modifiedDetails"] == {**PAYOUT["details"], "method": "instant"}


async def test_an_edit_modal_submitted_unchanged_is_a_plain_approval(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    await slack.click("edit", created["approvalId"])
    await slack.submit(slack.last_view(), {AMOUNT: {"amount": text_input("500.00")},
                                           field_block_id("method"): {"method": select_input("standard")},
                                           "note": {"note": text_input("Looks right.")}})
    final = await slack.approval(created["approvalId"])
    assert (final["status"], final["decisionNote"]) == ("approved", "Looks right.")
    assert (final["modifiedDetails"], final["changes"]) == (None, {})


async def test_a_refund_edit_above_what_stripe_can_refund_is_answered_in_the_modal(make_settings, clock):
    with FakeStripe() as stripe:
        charge = stripe.add_charge(amount=34900, currency="usd", amount_refunded=20000)
        details = {**REFUND["details"], "charge_id": charge["id"], "amount_cents": 10000}
        async with slack_harness(make_settings, clock, stripe_secret_key="sk_test_123",
                                 stripe_api_base=stripe.url) as slack:
            created = await slack.request({**REFUND, "details": details})
            await slack.settle()
            await slack.click("edit", created["approvalId"])
            response = await slack.submit(slack.last_view(), {AMOUNT: {"amount": text_input("200.00")}})
            answer = response.json()
            assert answer["response_action"] == "errors"
            assert "$149.00 USD" in answer["errors"][AMOUNT]
            assert (await slack.approval(created["approvalId"]))["status"] == "pending"
            assert stripe.refunds == []


async def test_reject_opens_a_modal_and_needs_a_note(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    await slack.click("reject", created["approvalId"])
    view = slack.last_view()
    assert view["callback_id"] == "reject_modal"
    empty = await slack.submit(view, {"note": {"note": text_input("   ")}})
    assert empty.json()["response_action"] == "errors"
    assert (await slack.approval(created["approvalId"]))["status"] == "pending"

    response = await slack.submit(view, {"note": {"note": text_input("Payouts wait for month end.")}})
    assert response.status_code == 200 and not response.content.strip(b"{}")
    await slack.settle()
    final = await slack.approval(created["approvalId"])
    assert (final["status"], final["decisionNote"]) == ("rejected", "Payouts wait for month end.")
    message = await slack.message(created["approvalId"])
    assert not has_buttons(message)
    assert "Payouts wait for month end." in json.dumps(message["blocks"])


async def test_two_approvers_racing_record_one_decision(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    first, second = await asyncio.gather(slack.click("approve", created["approvalId"]),
                                         slack.click("approve", created["approvalId"], user=GROUP_MEMBER))
    assert first.status_code == second.status_code == 200
    await slack.settle()
    final = await slack.approval(created["approvalId"])
    assert final["status"] == "approved" and len(final["approvals"]) == 1
    winner = final["decidedBy"]["id"]
    loser = GROUP_MEMBER if winner == APPROVER else APPROVER
    assert "already approved by" in slack.ephemerals_to(loser)[-1]
    assert f"<@{winner}>" in slack.ephemerals_to(loser)[-1]
    assert not has_buttons(await slack.message(created["approvalId"]))


async def test_a_member_of_an_approver_group_may_decide(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    await slack.click("approve", created["approvalId"], user=GROUP_MEMBER)
    assert (await slack.approval(created["approvalId"]))["decidedBy"]["id"] == GROUP_MEMBER
    assert [c["usergroup"] for c in slack.fake.calls_to("usergroups.users.list")] == [GROUP]


async def test_a_stale_click_on_a_decided_request_says_who_decided_and_refreshes(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    channel, ts = await slack.location(created["approvalId"])
    before = slack.fake.message(channel, ts)["blocks"]
    await slack.container.decisions.decide(created["approvalId"], Actor("operator", "UAPPROVER", "Ops"), "reject",
                                           note="Done by hand.")
    # Slack still shows the old buttons (the update has not run yet): click one of them.
    value = button_value(before, created["approvalId"], "approve")
    payload = block_actions("approve", value, f"review.{created['approvalId']}", user=APPROVER, channel=channel,
                            message_ts=ts)
    await slack.send(interactivity_body(payload))
    assert "already rejected by Ops" in slack.ephemerals_to(APPROVER)[-1]
    assert (await slack.approval(created["approvalId"]))["status"] == "rejected"
    await slack.settle()
    assert not has_buttons(slack.fake.message(channel, ts))


async def test_a_quorum_of_two_shows_who_approved_so_far(make_settings, clock, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  required_approvals: 2\n")
    async with slack_harness(make_settings, clock, policy_file=policy) as slack:
        created = await slack.request(PAYOUT)
        await slack.settle()
        assert "0 of 2 approvals" in json.dumps((await slack.message(created["approvalId"]))["blocks"])

        await slack.click("approve", created["approvalId"])
        await slack.settle()
        assert "1 of 2 approvals so far" in slack.ephemerals_to(APPROVER)[-1]
        message = await slack.message(created["approvalId"])
        assert has_buttons(message)
        assert f"1 of 2 approvals*: <@{APPROVER}>" in json.dumps(message["blocks"])

        await slack.click("approve", created["approvalId"])  # the same person cannot count twice
        assert "already approved" in slack.ephemerals_to(APPROVER)[-1]
        assert (await slack.approval(created["approvalId"]))["status"] == "pending"

        await slack.click("approve", created["approvalId"], user=GROUP_MEMBER)
        await slack.settle()
        final = await slack.approval(created["approvalId"])
        assert final["status"] == "approved" and len(final["approvals"]) == 2
        message = await slack.message(created["approvalId"])
        assert not has_buttons(message)
        assert "2 of 2 approvals" in json.dumps(message["blocks"])


async def test_large_amounts_ask_for_confirmation_small_ones_do_not(slack):
    large = await slack.request({**PAYOUT, "details": {**PAYOUT["details"], "amount_cents": 250000}})
    small = await slack.request(PAYOUT)
    await slack.settle()

    def approve_button(message):
        block = next(b for b in message["blocks"] if b["type"] == "actions")
        return next(e for e in block["elements"] if e["action_id"] == "approve")

    assert "confirm" in approve_button(await slack.message(large["approvalId"]))
    assert "confirm" not in approve_button(await slack.message(small["approvalId"]))


async def test_app_home_lists_what_waits_for_this_reviewer_and_decides_from_there(slack):
    waiting = await slack.request(PAYOUT)
    decided = await slack.request({**PAYOUT, "summary": "An earlier payout"})
    await slack.settle()
    await slack.click("reject", decided["approvalId"])
    await slack.submit(slack.last_view(), {"note": {"note": text_input("No.")}})

    opened = {"type": "app_home_opened", "user": APPROVER, "channel": "D0HOME", "tab": "home",
              "event_ts": f"{time.time():.6f}"}
    body = json.dumps(event_callback(opened)).encode()
    assert (await slack.send(body, content_type="application/json")).status_code == 200
    home = await eventually(lambda: slack.fake.home_views.get(APPROVER))
    shown = json.dumps(home["blocks"], ensure_ascii=False)
    assert "Waiting for review (1)" in shown and "Latest decisions" in shown
    value = button_value(home["blocks"], waiting["approvalId"], "approve")

    # Strangers see nothing to decide.
    stranger = {**opened, "user": STRANGER}
    await slack.send(json.dumps(event_callback(stranger)).encode(), content_type="application/json")
    assert "Nothing is waiting for review" in json.dumps((await eventually(
        lambda: slack.fake.home_views.get(STRANGER)))["blocks"])

    click = block_actions("approve", value, f"review.{waiting['approvalId']}", user=APPROVER,
                          home_view_id=home["id"])
    await slack.send(interactivity_body(click))
    await slack.settle()
    assert (await slack.approval(waiting["approvalId"]))["status"] == "approved"
    assert "Nothing is waiting for review" in json.dumps(slack.fake.home_views[APPROVER]["blocks"])
    assert not has_buttons(await slack.message(waiting["approvalId"]))

