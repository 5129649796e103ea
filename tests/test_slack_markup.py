"""Agent text is data in Slack: attacks on the review message through the real wire, read back from
the fake Slack. What an agent writes may be shown, never parsed: no mention, no link, no bold label,
no line of its own, no bidi trick."""

import json
import re
import time
from typing import Any

import pytest

from tests.conftest import REFUND
from tests.slack_helpers import (
    APPROVER,
    STRANGER,
    event_callback,
    eventually,
    slack_harness,
    text_input,
)

DASHBOARD_LINK = re.compile(r"<(https?://[^|>]*)\|")
STRIPE_PAGE = re.compile(r"https://dashboard\.stripe\.com(/test)?/[a-z]+/"
                         r"(ch|py|pi|re|cus|sub|dp|du|po|in|price|prod)_[A-Za-z0-9]{1,250}")
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


@pytest.fixture
async def slack(make_settings, clock):
    async with slack_harness(make_settings, clock) as harness:
        yield harness


def text_objects(node: Any) -> list[dict[str, Any]]:
    """Every Block Kit text object (`{"type": "mrkdwn" | "plain_text", "text": …}`) in a payload."""
    if isinstance(node, list):
        return [found for item in node for found in text_objects(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str) else []
    return own + [found for value in node.values() for found in text_objects(value)]


def mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    """What Slack parses as markup: the mrkdwn objects and the message's own `text`."""
    return [t["text"] for t in text_objects(message["blocks"]) if t["type"] == "mrkdwn"] + [message["text"]]


def every_string(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


async def test_a_custom_actions_keys_and_id_lookalikes_cannot_ping_or_link(slack):
    details = {
        "<!channel>": "look here",
        "charge": "ch_1><!channel>",
        "payment": "pi_1|Verified by Stripe",
        "customer": "cus_Q2w3E4r5",
        "order": "<https://evil.example|ch_1>",
    }
    created = await slack.request({"action": "store_credit", "summary": "Goodwill credit", "details": details,
                                   "execute": False})
    await slack.settle()
    message = await slack.message(created["approvalId"])
    shown = every_string(message)

    assert "<!channel>" not in shown and "<!here>" not in shown
    links = DASHBOARD_LINK.findall("\n".join(mrkdwn_texts(message)))
    assert links, "the well-formed customer id is still linked"
    assert all(STRIPE_PAGE.fullmatch(url) for url in links), links
    assert any(url.endswith("/customers/cus_Q2w3E4r5") for url in links)
    # The look-alikes are shown as text: the reviewer sees what the agent sent, inert.
    assert "pi_1|Verified by Stripe" in shown and "ch_1&gt;&lt;!channel&gt;" in shown
    assert "&lt;!channel&gt;" in shown


async def test_agent_prose_cannot_draw_a_fact_line_a_bold_label_or_hide_text(slack):
    forged = "\n*Amount:* $1.00 USD\n"
    created = await slack.request({
        **REFUND, "execute": False,
        "summary": f"Duplicate charge{forged}Approved by finance",
        "justification": f"Customer asked twice.{forged}\u202eDSU 00.1$",
        "agentName": f"support-bot{forged}",
        "metadata": {f"*Amount:*{forged}": f"$1.00 USD{forged}", "ticket": "T-1\u2066"},
    })
    await slack.settle()

    def check(message: dict[str, Any]) -> None:
        rows = [row for text in mrkdwn_texts(message) for row in text.split("\n")]
        # One amount line, ours; the agent's `*Amount:* $1.00 USD` is nowhere bold, nor a line of its own.
        assert [row for row in rows if row.startswith("*Amount:*")] == ["*Amount:* $349.00 USD"]
        assert not any("*Amount:* $1.00" in text for text in mrkdwn_texts(message))
        # The agent's name stays on the requester line, whatever line breaks it carried.
        requester = [row for row in rows if row.startswith("Requested through")]
        assert requester and all("by agent *support-bot ∗Amount:∗ $1.00 USD*" in row for row in requester)
        assert not any(char in every_string(message) for char in BIDI)
        # The summary is plain text: Slack shows its asterisks and parses nothing in it.
        summaries = [t for t in text_objects(message["blocks"]) if "Duplicate charge" in t["text"]]
        assert summaries and all(t["type"] == "plain_text" and "\n" not in t["text"] for t in summaries)

    check(await slack.message(created["approvalId"]))

    # The reviewer's note on the decided message is a labelled quote, line by line.
    await slack.click("reject", created["approvalId"])
    note = f"No.{forged}<!here> <https://evil.example|refund.ok>"
    response = await slack.submit(slack.last_view(), {"note": {"note": text_input(note)}})
    assert response.status_code == 200
    await slack.settle()
    decided = await slack.message(created["approvalId"])
    check(decided)
    shown = every_string(decided)
    assert "<!here>" not in shown and "<https://evil.example" not in shown
    outcome = next(t for t in mrkdwn_texts(decided) if "Rejected" in t)
    assert "*Note:*\n> No." in outcome and "> ∗Amount:∗ $1.00 USD" in outcome


async def test_app_home_shows_the_latest_decisions_to_approvers_only(slack):
    decided = await slack.request({**REFUND, "execute": False, "summary": "Refund for customer Jane Roe"})
    await slack.settle()
    await slack.click("approve", decided["approvalId"])
    await slack.settle()

    def opened(user: str) -> bytes:
        event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
                 "event_ts": f"{time.time():.6f}"}
        return json.dumps(event_callback(event)).encode()

    assert (await slack.send(opened(STRANGER), content_type="application/json")).status_code == 200
    stranger = json.dumps((await eventually(lambda: slack.fake.home_views.get(STRANGER)))["blocks"])
    assert "*Latest decisions*" not in stranger and "Refund $349.00" not in stranger
    assert "shown to approvers only" in stranger

    await slack.send(opened(APPROVER), content_type="application/json")
    approver = json.dumps((await eventually(lambda: slack.fake.home_views.get(APPROVER)))["blocks"])
    assert "*Latest decisions*" in approver and "Refund $349.00 USD" in approver


async def test_text_that_grows_when_escaped_still_fits_slacks_limits(slack):
    # `<` becomes `&lt;`: 2,000 of them are 8,000 characters, past a section's 3,000.
    created = await slack.request({**REFUND, "execute": False, "summary": "<&>" * 666,
                                   "justification": "<" * 10_000, "agentName": "&" * 200,
                                   "metadata": {"<" * 40: ">" * 500}})
    await slack.settle()
    message = await slack.message(created["approvalId"])  # posted: the builders did not fail
    for text in text_objects(message["blocks"]):
        assert len(text["text"]) <= 3000
    summary = next(t["text"] for t in text_objects(message["blocks"]) if t["text"].startswith("&lt;&amp;"))
    assert summary.endswith("…") and "&lt;&amp;&gt;" in summary
