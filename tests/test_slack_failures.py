"""Slack over time and under failure: expiry, reminders, alerts, Slack failing in every way that
loses nothing; and how the app is served (HTTP or Socket Mode)."""

import json

import pytest
from sqlalchemy import select

from api.approvals.actors import Actor
from api.main import build_container
from api.outbox.models import Job, JobAttempt
from bot.wiring import slack_of
from tests.conftest import REFUND
from tests.slack_helpers import ALERTS, APPROVER, GROUP, GROUP_MEMBER, PAYOUT, REVIEW, has_buttons, slack_harness

OPERATOR = Actor("operator", "UAPPROVER", "Ops")


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


def texts(fake, channel):
    return [m["text"] for m in fake.messages_in(channel)]


async def jobs(slack, kind):
    async with slack.container.db.read() as session:
        return list((await session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id))).all())


async def test_expiry_updates_the_message_and_alerts_finance_with_a_link(slack, clock):
    created = await slack.request(PAYOUT)
    await slack.settle()
    clock.advance(hours=24, seconds=1)
    await slack.settle()

    assert (await slack.approval(created["approvalId"]))["status"] == "expired"
    message = await slack.message(created["approvalId"])
    assert not has_buttons(message) and "Expired" in json.dumps(message["blocks"])
    [alert] = texts(slack.fake, ALERTS)
    assert alert.startswith("⌛ Expired without a decision") and created["approvalId"] in alert
    assert "https://fake.slack.com/archives/C0REVIEW/" in alert and "\n" not in alert


async def test_one_threaded_reminder_halfway_to_expiry_mentions_the_approvers(slack, clock):
    waiting = await slack.request(PAYOUT)
    decided = await slack.request({**PAYOUT, "summary": "Decided in time"})
    await slack.settle()
    await slack.container.decisions.decide(decided["approvalId"], OPERATOR, "approve")
    await slack.settle()
    posted = len(slack.fake.calls_to("chat.postMessage"))

    clock.advance(hours=11, minutes=59)
    await slack.settle()
    assert len(slack.fake.calls_to("chat.postMessage")) == posted

    clock.advance(minutes=2)
    await slack.settle()
    clock.advance(hours=6)
    await slack.settle()
    reminders = slack.fake.calls_to("chat.postMessage")[posted:]
    _, ts = await slack.location(waiting["approvalId"])
    assert [r["thread_ts"] for r in reminders] == [ts]  # one, in the waiting request's thread
    assert f"<@{APPROVER}>" in reminders[0]["text"] and f"<!subteam^{GROUP}>" in reminders[0]["text"]
    assert reminders[0]["channel"] == REVIEW


async def test_a_rate_limited_post_is_retried_after_retry_after(slack, clock):
    slack.fake.fail_next("chat.postMessage", "ratelimited", retry_after=30)
    created = await slack.request(PAYOUT)
    await slack.settle()
    assert slack.fake.messages_in(REVIEW) == []
    [job] = await jobs(slack, "slack.post_request")
    assert job.status == "queued" and "ratelimited" in job.last_error

    clock.advance(seconds=29)
    await slack.settle()
    assert slack.fake.messages_in(REVIEW) == []
    clock.advance(seconds=2)
    await slack.settle()
    assert has_buttons(await slack.message(created["approvalId"]))
    assert len(slack.fake.calls_to("chat.postMessage")) == 2


async def test_a_server_error_on_update_is_retried_and_the_message_catches_up(slack, clock):
    created = await slack.request(PAYOUT)
    await slack.settle()
    slack.fake.fail_next("chat.update", status=503)
    await slack.click("approve", created["approvalId"])
    await slack.settle()
    assert has_buttons(await slack.message(created["approvalId"]))  # the update failed
    clock.advance(minutes=1)
    await slack.settle()
    assert not has_buttons(await slack.message(created["approvalId"]))


@pytest.mark.parametrize("missing", ["channel_not_found", "not_in_channel"])
async def test_a_review_channel_slack_refuses_parks_the_post_alerts_and_the_cli_still_decides(
        make_settings, clock, missing):
    channel = "C0GONE" if missing == "channel_not_found" else "C0NOTIN"
    async with slack_harness(make_settings, clock, review_channel=channel) as slack:
        slack.fake.add_channel("C0NOTIN", member=False)
        created = await slack.request(PAYOUT)
        await slack.settle()

        [job] = await jobs(slack, "slack.post_request")
        assert job.status == "parked" and missing in job.last_error
        async with slack.container.db.read() as session:
            attempts = (await session.scalars(select(JobAttempt).where(JobAttempt.job_id == job.id))).all()
        assert len(attempts) == 1  # parked at once: retrying would get the same answer
        [alert] = texts(slack.fake, ALERTS)
        assert missing in alert and created["approvalId"] in alert and "cheqpoint approvals approve" in alert

        result = await slack.container.decisions.decide(created["approvalId"], OPERATOR, "approve")
        assert result.outcome == "decided"
        await slack.settle()
        assert (await slack.approval(created["approvalId"]))["status"] == "approved"
        assert [j.status for j in await jobs(slack, "slack.update_message")] == ["done"]


async def test_a_bad_token_parks_without_an_alert_that_could_not_be_sent(make_settings, clock, caplog):
    async with slack_harness(make_settings, clock) as slack:
        slack.fake.token = "xoxb-rotated"
        created = await slack.request(PAYOUT)
        await slack.settle()
        [job] = await jobs(slack, "slack.post_request")
        assert job.status == "parked" and "invalid_auth" in job.last_error
        assert await jobs(slack, "slack.alert") == []
        assert any("invalid_auth" in r.message and created["approvalId"] in r.message for r in caplog.records)


async def test_a_failed_execution_updates_the_message_and_alerts(slack):
    created = await slack.request({**REFUND})  # executes, but no Stripe key is configured
    await slack.settle()
    await slack.click("approve", created["approvalId"])
    await slack.settle()
    final = await slack.approval(created["approvalId"])
    assert final["execution"]["status"] == "failed"
    message = json.dumps((await slack.message(created["approvalId"]))["blocks"])
    assert "Stripe:* failed" in message
    [alert] = texts(slack.fake, ALERTS)
    assert alert.startswith("❌ Stripe call failed") and "https://fake.slack.com/archives/" in alert


async def test_auto_approved_requests_alert_finance_and_post_no_review_message(make_settings, clock, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - name: small payouts\n    actions: [create_payout]\n"
                      "    when: details.amount_cents <= 100000\n    decision: approve\n")
    async with slack_harness(make_settings, clock, policy_file=policy) as slack:
        created = await slack.request(PAYOUT)
        assert created["status"] == "approved"
        await slack.settle()
        assert slack.fake.messages_in(REVIEW) == []
        [alert] = texts(slack.fake, ALERTS)
        assert "Approved automatically by rule “small payouts”" in alert and created["approvalId"] in alert


async def test_cancellation_by_the_agent_updates_the_message(slack):
    created = await slack.request(PAYOUT)
    await slack.settle()
    response = await slack.http.post(f"/v1/approvals/{created['approvalId']}/cancel", headers=slack.auth)
    assert response.status_code == 200
    await slack.settle()
    message = await slack.message(created["approvalId"])
    assert not has_buttons(message) and "Cancelled" in json.dumps(message["blocks"])
    assert texts(slack.fake, ALERTS) == []


async def test_with_an_app_token_socket_mode_replaces_the_http_endpoint(make_settings, clock):
    settings = make_settings(slack_bot_token="xoxb-test", slack_app_token="xapp-1-test", slack_api_url="http://x/",
                             review_channel=REVIEW, approvers=[APPROVER])
    container = build_container(settings, clock=clock)
    try:
        slack = slack_of(container)
        assert container.routers == [] and slack.routers == ()
        assert slack.socket is not None and slack.socket.app is slack.app  # started by `running()`
    finally:
        await slack.close()
        await container.http.aclose()
        await container.gateway.aclose()
        await container.db.close()


async def test_group_membership_fails_closed_and_is_cached_for_a_minute(slack, clock):
    first = await slack.request(PAYOUT)
    second = await slack.request({**PAYOUT, "summary": "Another payout"})
    await slack.settle()
    slack.fake.fail_next("usergroups.users.list", "missing_scope")
    await slack.click("approve", first["approvalId"], user=GROUP_MEMBER)
    assert "Only approvers" in slack.ephemerals_to(GROUP_MEMBER)[-1]
    assert (await slack.approval(first["approvalId"]))["status"] == "pending"

    await slack.click("approve", first["approvalId"], user=GROUP_MEMBER)  # failures are not cached
    assert (await slack.approval(first["approvalId"]))["status"] == "approved"
    slack.fake.add_usergroup(GROUP, [])  # removed from the group: still allowed while cached
    await slack.click("reject", second["approvalId"], user=GROUP_MEMBER)
    assert slack.fake.calls_to("views.open")
    clock.advance(seconds=61)
    await slack.click("approve", second["approvalId"], user=GROUP_MEMBER)
    assert "Only approvers" in slack.ephemerals_to(GROUP_MEMBER)[-1]
    assert len(slack.fake.calls_to("usergroups.users.list")) == 3
