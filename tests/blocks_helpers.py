"""Shared by the Block Kit builder tests: approvals as the builders receive them, and reading blocks
and modal state back."""

import json

from bot.ids import field_block_id
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-test"
REVIEW = FakeSlack.REVIEW_CHANNEL


def approval(**overrides) -> dict:
    """CONTRACT §3's approval object for the seed's refund, pending."""
    base = {
        "approvalId": "apr_01HZX",
        "status": "pending",
        "action": "issue_refund",
        "summary": "AI agent requesting full refund for charge ch_3NxYz for $349.00",
        "details": {
            "charge_id": "ch_3NxYzAbCdEfGhIjK",
            "amount_cents": 34900,
            "currency": "usd",
            "reason": "duplicate",
            "customer_id": "cus_QaAbCdEfGhIjK",
        },
        "justification": "Customer provided proof of duplicate charge within dispute window.",
        "modifiedDetails": None,
        "changes": {},
        "decisionNote": None,
        "decidedBy": None,
        "rule": "large refunds",
        "approvals": [],
        "requiredApprovals": 1,
        "riskLevel": "medium",
        "priority": "normal",
        "agentName": "support-bot",
        "metadata": {},
        "createdAt": "2024-05-01T09:00:00Z",
        "decidedAt": None,
        "expiresAt": "2024-05-02T09:00:00Z",
        "execution": {"status": "not_requested", "stripeObjectId": None, "result": None, "error": None},
    }
    return {**base, **overrides}


def payout_jpy(**overrides) -> dict:
    details = {"amount_cents": 5000, "currency": "jpy", "method": "standard"}
    return approval(action="create_payout", summary="Weekly payout", details=details, **overrides)


def decided(**overrides) -> dict:
    fields = {
        "status": "approved",
        "decidedBy": {"type": "slack_user", "id": "U0ANN", "name": "ann"},
        "decidedAt": "2024-05-01T10:00:00Z",
    }
    return approval(**{**fields, **overrides})


def texts(blocks) -> str:
    """Every string in the payload, to search what a reader would see."""
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"]


def state(values: dict[str, tuple[str, dict]]) -> dict:
    """view.state.values as Slack sends them: {block_id: {action_id: state}}."""
    return {block_id: {action_id: element} for block_id, (action_id, element) in values.items()}


def amount_state(text: str) -> dict:
    return state({field_block_id("amount_cents"): ("amount", {"type": "plain_text_input", "value": text})})
