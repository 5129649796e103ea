"""Claims: "I'm on it". Everyone sees who is reviewing a request; a second reviewer is warned,
privately, before deciding a request someone else claimed (and may still decide it)."""

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.enums import Verdict
from api.db import Database
from bot import layout
from bot.blocks.common import mrkdwn_section, to_dicts
from bot.handlers.common import actor_of, from_home
from bot.ids import ActionId, ButtonRef
from bot.models import Claim
from bot.render import Snapshot

_ANYWAY = {Verdict.APPROVE: (ActionId.APPROVE_ANYWAY, "Approve anyway"),
           Verdict.REJECT: (ActionId.REJECT_ANYWAY, "Reject anyway")}


async def claim(session: AsyncSession, approval_id: str, user_id: str, now: datetime) -> bool:
    """Record the claim; False when this person had already claimed it."""
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(insert(Claim).values(approval_id=approval_id, user_id=user_id, claimed_at=now)
                                   .on_conflict_do_nothing(index_elements=["approval_id", "user_id"]))
    return bool(result.rowcount)


async def claimants(db: Database, approval_id: str) -> list[tuple[str, datetime]]:
    async with db.read() as session:
        rows = await session.execute(select(Claim.user_id, Claim.claimed_at)
                                     .where(Claim.approval_id == approval_id).order_by(Claim.id))
        return [(user, at) for user, at in rows.all()]


def warning_text(others: list[str]) -> str:
    who = " ".join(layout.mention(user) for user in others)
    return (f"⚠️ {who} {'is' if len(others) == 1 else 'are'} already reviewing this request. "
            "Nothing was recorded yet: decide anyway, or leave it to them.")


async def warn_if_claimed(db: Database, client: AsyncWebClient, body: dict[str, Any], snapshot: Snapshot,
                          verdict: Verdict) -> bool:
    """True when someone else claimed the request: the person was warned and nothing happened yet.
    The warning carries a "… anyway" button pointing at the same revision."""
    me = actor_of(body).id
    others = [user for user, _ in await claimants(db, snapshot.id) if user != me]
    if not others:
        return False
    action_id, label = _ANYWAY[verdict]
    value = ButtonRef(approval_id=snapshot.id, version=snapshot.revision).dumps()
    text = warning_text(others)
    blocks = to_dicts([mrkdwn_section(text), ActionsBlock(block_id=f"anyway.{snapshot.id}", elements=[
        ButtonElement(text=label, action_id=action_id, value=value, style="danger" if verdict == Verdict.REJECT
                      else "primary")])])
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if channel and not from_home(body):
        await client.chat_postEphemeral(channel=channel, user=me, text=text, blocks=blocks)
    else:
        await client.chat_postMessage(channel=me, text=text, blocks=blocks)
    return True
