"""Where a review message is lives in the Slack adapter's table; the core asks for a link through
the hook the adapter registers (the compatible API's `reviewUrl`)."""

from sqlalchemy import inspect

from api.approvals.models import Approval
from tests.slack_helpers import PAYOUT, REVIEW, review_message, slack_harness


async def test_the_compatible_api_links_the_posted_slack_message(make_settings, clock):
    async with slack_harness(make_settings, clock) as slack:
        key = slack.auth["Authorization"].removeprefix("Bearer ")
        headers = {"x-api-key": key, "Idempotency-Key": "link-1"}
        first = await slack.http.post("/api/webhooks/inbound", json=PAYOUT, headers=headers)
        assert first.status_code == 200, first.text
        assert first.json()["reviewUrl"] is None  # not posted yet: nothing to link to
        await slack.settle()

        again = await slack.http.post("/api/webhooks/inbound", json=PAYOUT, headers=headers)
        assert again.status_code == 200, again.text
        approval_id = again.json()["approvalId"]
        assert approval_id == first.json()["approvalId"]
        channel, ts = await slack.location(approval_id)
        assert channel == REVIEW and slack.fake.message(channel, ts) is not None
        assert again.json()["reviewUrl"] == f"https://slack.com/archives/{REVIEW}/p{ts.replace('.', '')}"


async def test_posting_records_the_message_in_slacks_table_not_on_the_approval(make_settings, clock):
    async with slack_harness(make_settings, clock) as slack:
        created = await slack.request(PAYOUT)
        version_before = (await slack.container.approvals.get(None, created["approvalId"])).version
        await slack.settle()
        assert await review_message(slack.container.db, created["approvalId"]) is not None
        row = await slack.container.approvals.get(None, created["approvalId"])
        # Storing where the message is does not touch the approval: a click made on the fresh
        # message cannot look stale because of it.
        assert row.version == version_before
        assert not {"slack_channel", "slack_ts"} & {c.key for c in inspect(Approval).columns}
