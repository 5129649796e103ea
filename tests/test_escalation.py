"""Escalation: an undecided request is raised in its thread and its approvers are DMed, on time and
within business hours when the policy says so."""

from datetime import UTC, datetime

import pytest

from api.policy import PolicyError, parse_policy
from api.policy.reviewing import BusinessHours
from tests.digest_helpers import digests, refund
from tests.slack_helpers import APPROVER, GROUP, GROUP_MEMBER, PAYOUT, REVIEW, slack_harness

ESCALATING = """
defaults:
  approvers: [UAPPROVER, S0FINANCE]
  escalate_after: 30m
  escalate_to: [S0FINANCE, UBOSS]
"""


def _policy(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def _escalations(slack, ts: str) -> list[dict]:
    return [m for m in slack.fake.messages_in(REVIEW) if m.get("thread_ts") == ts and "Still undecided" in m["text"]]


def _dms(slack, user: str) -> list[str]:
    return [m["text"] for m in slack.fake.messages_in(user)]


async def test_an_undecided_request_is_escalated_in_its_thread_and_its_approvers_dmed(make_settings, clock, tmp_path):
    async with slack_harness(make_settings, clock, policy_file=_policy(tmp_path, ESCALATING)) as slack:
        created = await slack.request(PAYOUT)
        await slack.settle()
        _, ts = await slack.location(created["approvalId"])

        clock.advance(minutes=29)
        await slack.settle()
        assert [m for m in slack.fake.messages_in(REVIEW) if m.get("thread_ts") == ts] == []

        clock.advance(minutes=2)
        await slack.settle()
        (escalation,) = [m for m in slack.fake.messages_in(REVIEW) if m.get("thread_ts") == ts]
        assert f"<!subteam^{GROUP}>" in escalation["text"] and "<@UBOSS>" in escalation["text"]
        assert "Still undecided after 31 min" in escalation["text"]
        assert any("Still undecided" in text for text in _dms(slack, APPROVER))
        assert any("Still undecided" in text for text in _dms(slack, GROUP_MEMBER))  # the group's members too


async def test_a_request_decided_in_time_is_not_escalated(make_settings, clock, tmp_path):
    async with slack_harness(make_settings, clock, policy_file=_policy(tmp_path, ESCALATING)) as slack:
        created = await slack.request(PAYOUT)
        await slack.settle()
        await slack.click("approve", created["approvalId"])
        clock.advance(minutes=45)
        await slack.settle()
        _, ts = await slack.location(created["approvalId"])
        assert not [m for m in slack.fake.messages_in(REVIEW) if m.get("thread_ts") == ts]
        assert not any("Still undecided" in text for text in _dms(slack, GROUP_MEMBER))


async def test_an_item_of_a_digest_is_escalated_in_the_digests_thread(make_settings, clock, tmp_path):
    async with slack_harness(make_settings, clock, policy_file=_policy(tmp_path, ESCALATING),
                             slack_digest_threshold=2) as slack:
        for n in range(4):
            await slack.request(refund(n))
        await slack.settle()
        (digest,) = await digests(slack)
        clock.advance(minutes=31)
        await slack.settle()
        escalations = [m for m in slack.fake.messages_in(REVIEW) if m.get("thread_ts") == digest.ts]
        assert len(escalations) == 4 and all("Still undecided" in m["text"] for m in escalations)


async def test_escalations_wait_for_business_hours(make_settings, clock, tmp_path):
    clock.now = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)  # a Saturday evening
    policy = ESCALATING + ("  expires_in: 3d\n  business_hours: {timezone: Europe/London, "
                           "days: [mon, tue, wed, thu, fri], start: '09:00', end: '17:00'}\n")
    async with slack_harness(make_settings, clock, policy_file=_policy(tmp_path, policy)) as slack:
        created = await slack.request(PAYOUT)
        await slack.settle()
        _, ts = await slack.location(created["approvalId"])
        clock.advance(hours=12)  # Sunday morning: still closed
        await slack.settle()
        assert not _escalations(slack, ts)  # (the halfway reminder may be there: reminders stay)
        clock.now = datetime(2026, 11, 30, 9, 1, tzinfo=UTC)  # Monday, 09:01 in London
        await slack.settle()
        assert _escalations(slack, ts)


@pytest.mark.parametrize(("moment", "expected"), [
    (datetime(2026, 11, 30, 10, 0, tzinfo=UTC), datetime(2026, 11, 30, 10, 0, tzinfo=UTC)),  # Monday, open
    (datetime(2026, 11, 30, 18, 0, tzinfo=UTC), datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),  # after hours
    (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),  # Saturday
    (datetime(2026, 11, 30, 7, 0, tzinfo=UTC), datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),  # before opening
])
def test_business_hours_next_opening(moment, expected):
    assert BusinessHours(timezone="UTC").next_open(moment) == expected


def test_business_hours_refuse_an_unknown_zone_and_a_backwards_day():
    with pytest.raises(ValueError, match="time zone"):
        BusinessHours(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="later than start"):
        BusinessHours(start="17:00", end="09:00")


@pytest.mark.parametrize(("text", "problem"), [
    ("rules:\n  - name: a\n    actions: [issue_refund]\n    decision: approve\n    escalate_after: 30m\n",
     "only a review rule takes `escalate_after`"),
    ("defaults:\n  business_hours: {timezone: Nope/Zone}\n", "unknown time zone"),
    ("defaults:\n  escalate_to: [finance-leads]\n", "escalate_to"),
])
def test_the_policy_refuses_escalation_settings_that_cannot_work(text, problem):
    with pytest.raises(PolicyError, match=problem):
        parse_policy(text.encode())
