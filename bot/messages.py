"""Where each request's own review message is: Slack's `slack_messages` table, not the core's.

The approvals core knows nothing of channels and timestamps; the Slack jobs record the message
here once it is posted, and read it back to update, thread and link to it. `review_url` is the
hook the Slack adapter gives the core, so an agent can be sent a link to the message.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import exists
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.models import Approval
from api.db import Database
from bot.models import SlackMessage


async def message_of(session: AsyncSession, approval_id: str) -> SlackMessage | None:
    return await session.get(SlackMessage, approval_id)


def posted() -> Any:
    """A WHERE clause over `Approval`: the request has its own review message."""
    return exists().where(SlackMessage.approval_id == Approval.id)


async def record(session: AsyncSession, approval_id: str, channel: str, ts: str, posted_at: datetime) -> None:
    """Remember the message; the first one recorded stays (a repeated post job finds it and stops).

    A row of its own, so storing it never bumps the approval's version: a reviewer's click on the
    message cannot look stale because of it, nor fail a decision being written meanwhile.
    """
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert(SlackMessage).values(approval_id=approval_id, channel=channel, ts=ts,
                                                      posted_at=posted_at)
                          .on_conflict_do_nothing(index_elements=["approval_id"]))


def permalink(channel: str, ts: str) -> str:
    """A link to a message that Slack resolves itself (no API call, so it works while Slack is slow)."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


class SlackReviewLinks:
    """The Slack adapter's answer to "where is this request reviewed?" (`reviewUrl`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def review_url(self, approval_id: str) -> str | None:
        async with self.db.read() as session:
            message = await message_of(session, approval_id)
        if message is None or not message.channel:
            return None
        return permalink(message.channel, message.ts)
