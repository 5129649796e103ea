"""Slack (the fake) accepts every Block Kit payload the builders make."""


import pytest
from slack_sdk.web.async_client import AsyncWebClient

from api.actions import get_action
from bot.blocks import (
    app_home,
    decided_message,
    edit_modal,
    reject_modal,
    review_message,
)
from tests.blocks_helpers import REVIEW, TOKEN, approval, buttons, decided, payout_jpy
from tests.fakes.slack import FakeSlack

# -- Slack accepts all of it ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slack():
    fake = FakeSlack(token=TOKEN)
    with fake.serving() as base_url:
        yield fake, base_url


async def test_slack_accepts_the_messages_and_their_update(slack):
    fake, base_url = slack
    client = AsyncWebClient(token=TOKEN, base_url=base_url)
    long_text = approval(
        summary="x" * 5000,
        justification="y" * 5000,
        details={**approval()["details"], "metadata": {f"k{n}": "v" * 200 for n in range(40)}},
    )
    for subject in (approval(), payout_jpy(), long_text):
        text, blocks = review_message(subject, connection_name="c", test_mode=True, version=1, confirm_over_minor=1)
        posted = await client.chat_postMessage(channel=REVIEW, text=text, blocks=blocks)
        text, blocks = decided_message(decided(), connection_name="c", test_mode=True)
        await client.chat_update(channel=REVIEW, ts=posted["ts"], text=text, blocks=blocks)
        assert not buttons(fake.message(REVIEW, posted["ts"])["blocks"])


async def test_slack_accepts_the_modals_and_the_home_view(slack):
    fake, base_url = slack
    client = AsyncWebClient(token=TOKEN, base_url=base_url)
    await client.views_open(trigger_id="trigger-reject", view=reject_modal(approval(), 1))
    await client.views_open(
        trigger_id="trigger-edit", view=edit_modal(approval(), 1, get_action("issue_refund").editable)
    )
    cancel = approval(action="cancel_subscription", details={"subscription_id": "sub_1"})
    await client.views_open(
        trigger_id="trigger-cancel", view=edit_modal(cancel, 1, get_action("cancel_subscription").editable)
    )
    pending = [approval(approvalId=f"apr_{n}") for n in range(60)]
    await client.views_publish(user_id="U0ANN", view=app_home(pending, [decided()] * 30, test_mode=False))
    assert len(fake.home_views["U0ANN"]["blocks"]) <= 100
