"""Reading and clicking a digest message on the fake Slack."""

import json
from typing import Any

from sqlalchemy import select

from bot.blocks.digest import BULK_BLOCK_ID, PAGER_BLOCK_ID
from bot.ids import review_actions_block_id
from bot.models import Digest
from tests.slack_helpers import APPROVER, REVIEW, SlackHarness, block_actions, button_value, interactivity_body

SMALL_REFUND = {"action": "issue_refund", "summary": "Refund a duplicate charge",
                "details": {"charge_id": "ch_dup", "amount_cents": 1200, "currency": "usd", "reason": "duplicate",
                            "customer_id": "cus_small"}, "execute": False}


def refund(n: int, amount: int = 1200) -> dict[str, Any]:
    details = {**SMALL_REFUND["details"], "charge_id": f"ch_dup{n:04d}", "amount_cents": amount,
               "customer_id": f"cus_{n:04d}"}
    return {**SMALL_REFUND, "details": details}


async def digests(slack: SlackHarness) -> list[Digest]:
    async with slack.container.db.read() as session:
        return list((await session.scalars(select(Digest).order_by(Digest.created_at))).all())


def digest_messages(slack: SlackHarness) -> list[dict[str, Any]]:
    return [m for m in slack.fake.messages_in(REVIEW)
            if not m.get("thread_ts") and any(b.get("block_id") == PAGER_BLOCK_ID or (b["type"] == "header"
                                              and "📋" in b["text"]["text"]) for b in m["blocks"])]


def listed_ids(message: dict[str, Any]) -> list[str]:
    prefix = review_actions_block_id("")
    return [b["block_id"][len(prefix):] for b in message["blocks"] if b.get("block_id", "").startswith(prefix)]


def shown(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


async def click_item(slack: SlackHarness, digest: Digest, approval_id: str, action_id: str, *,
                     user: str = APPROVER) -> None:
    message = slack.fake.message(digest.channel, digest.ts or "")
    value = button_value(message["blocks"], approval_id, action_id)
    payload = block_actions(action_id, value, review_actions_block_id(approval_id), user=user,
                            channel=digest.channel, message_ts=digest.ts)
    response = await slack.send(interactivity_body(payload))
    assert response.status_code == 200, response.text


def block_button(message: dict[str, Any], block_id: str, action_id: str) -> dict[str, Any]:
    block = next(b for b in message["blocks"] if b.get("block_id") == block_id)
    return next(e for e in block["elements"] if e["action_id"] == action_id)


async def click_block(slack: SlackHarness, digest: Digest, message: dict[str, Any], block_id: str, action_id: str,
                      *, user: str = APPROVER) -> None:
    value = block_button(message, block_id, action_id)["value"]
    payload = block_actions(action_id, value, block_id, user=user, channel=digest.channel, message_ts=digest.ts)
    response = await slack.send(interactivity_body(payload))
    assert response.status_code == 200, response.text


BULK = BULK_BLOCK_ID
