"""Property: whatever an agent writes, every Slack text we build from it holds no markup of the agent's.

Arbitrary strings (weighted towards Slack's control characters, mrkdwn marks, line breaks and bidi
controls) go through every agent-written field into every builder: the review message, the decided
message, App Home, the modals and the notices. The same approval built with harmless text is the baseline: the
agent's version may have no more mentions (`<!`, `<@`, `<#`), links (`<http`), bold marks (`*` in
mrkdwn) or lines outside a quote than the baseline has, and no bidi or control character at all.
"""

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.blocks import (
    alert_text,
    app_home,
    decided_message,
    delivery_failed_text,
    edit_modal,
    reject_modal,
    reminder_text,
    review_message,
)

MARKUP = ("<!", "<@", "<#", "<http")
STRIPE_ID = re.compile(r"(ch|py|pi|re|cus|sub|dp|du|po|in|price|prod)_[A-Za-z0-9]{1,250}")
HIDDEN = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029\x00-\x09\x0b-\x1f\x7f-\x9f]")

FRAGMENTS = ["<!channel>", "<!here|here>", "<@U0BOSS>", "<#C0SECRET>", "<https://evil.example|ch_1>",
             "\n*Amount:* $1.00 USD\n", "*Approved*", "_", "~x~", "`", "```", "&gt;", "> ", "ch_1><!here>",
             "pi_1|Verified", "cus_AbC123", "https://evil.example", "\u202e", "\u2066", "\u200f", "\u061c",
             "\r\n", "\u2028", "\x00", "\x1b[31m", "<!date^1^{date}|x>", "<!subteam^S1>", ":rotating_light:"]
piece = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8),
                  st.text(alphabet="<>!@#*_~`|&\n ", max_size=6))
agent_text = st.lists(piece, min_size=1, max_size=6).map("".join)


def harmless(value: str, stand_in: str) -> str:
    """The baseline for one field: a well-formed Stripe id stays (we link those), anything else is
    replaced by plain words."""
    return value if STRIPE_ID.fullmatch(value) else stand_in


def approval(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "approvalId": "apr_01PROP", "status": "pending", "action": "store_credit",
        "summary": fields["summary"], "justification": fields["justification"],
        "agentName": fields["agentName"], "metadata": fields["metadata"], "details": fields["details"],
        "modifiedDetails": None, "changes": {}, "decisionNote": None, "decidedBy": None, "rule": None,
        "approvals": [], "requiredApprovals": 1, "riskLevel": "high", "priority": "urgent",
        "createdAt": "2024-05-01T09:00:00Z", "decidedAt": None, "expiresAt": "2024-05-02T09:00:00Z",
        "execution": {"status": "failed", "error": {"type": "api_error", "message": fields["summary"]}},
        "connectionName": fields["agentName"],
    }


def rendered(fields: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Each builder's output as (kind, text) pairs: kind `mrkdwn`, `plain_text` or `text` (a message's
    `text`, which Slack parses as mrkdwn)."""
    pending = approval(fields)
    decided = {**pending, "status": "rejected", "decisionNote": fields["note"], "decidedAt": "2024-05-01T10:00:00Z",
               "decidedBy": {"type": "slack_user", "id": "U0ANN", "name": fields["agentName"]}}
    outputs: dict[str, Any] = {
        "review": review_message(pending, connection_name=fields["agentName"], test_mode=True, version=1),
        "decided": decided_message(decided, connection_name=fields["agentName"], test_mode=False),
        "home": ("", app_home([pending], [decided], test_mode=False)["blocks"]),
        "reject modal": ("", reject_modal(pending, 1)["blocks"]),
        "edit modal": ("", edit_modal(pending, 1, [])["blocks"]),
        "reminder": (reminder_text(pending, ["U0ANN", "S0FINANCE"]), []),
        "failed": (alert_text("execution_failed", {**decided, "status": "approved"}, None), []),
        "expired": (alert_text("expired", pending, "https://fake.slack.com/archives/C0REVIEW/p1"), []),
        "delivery": (delivery_failed_text(pending, "post the request", "C0REVIEW", "channel_not_found"), []),
    }
    return {name: [("text", text), *text_objects(blocks)] for name, (text, blocks) in outputs.items()}


def text_objects(node: Any) -> list[tuple[str, str]]:
    if isinstance(node, list):
        return [found for item in node for found in text_objects(item)]
    if not isinstance(node, dict):
        return []
    own = [(node["type"], node["text"])] if node.get("type") in ("mrkdwn", "plain_text") else []
    return own + [found for value in node.values() for found in text_objects(value)]


def measure(texts: list[tuple[str, str]]) -> dict[str, int]:
    parsed = [text for kind, text in texts if kind != "plain_text"]
    counts = {token: sum(text.count(token) for _, text in texts) for token in MARKUP}
    counts["*"] = sum(text.count("*") for text in parsed)
    counts["lines outside a quote"] = sum(
        1 for text in parsed for row in text.split("\n") if not row.startswith("> "))
    return counts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=agent_text, justification=agent_text, agent_name=agent_text, note=agent_text,
       metadata=st.dictionaries(agent_text, agent_text, max_size=3),
       details=st.dictionaries(agent_text, agent_text, min_size=1, max_size=4))
def test_no_agent_string_adds_markup_anywhere(summary, justification, agent_name, note, metadata, details):
    fields = {"summary": summary, "justification": justification, "agentName": agent_name, "note": note,
              "metadata": metadata, "details": details}
    baseline = {
        "summary": "Goodwill credit", "justification": "Asked twice.", "agentName": "support-bot",
        "note": "Fine.", "metadata": {f"key{n}": "value" for n in range(len(metadata))},
        "details": {f"field{n}": harmless(value, "value") for n, value in enumerate(details.values())},
    }
    attacked, expected = rendered(fields), rendered(baseline)
    for name, texts in attacked.items():
        got, allowed = measure(texts), measure(expected[name])
        for what, count in got.items():
            assert count <= allowed[what], (name, what, count, allowed[what], json.dumps(texts, ensure_ascii=False))
        for kind, text in texts:
            assert not HIDDEN.search(text), (name, kind, ascii(text))
