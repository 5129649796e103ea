"""Asking the approvers again after an edit: a reply in the review message's thread.

An edit starts a new revision on which earlier approvals no longer count, so the people who may
decide (resolved now, by the core's authority) are mentioned with who changed what. The message
itself is refreshed by the usual update job; this only makes sure nobody misses it.
"""

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from api.approvals.authority import Authority
from api.outbox.registry import JobContext, JobRegistry, Retry
from bot import layout, render
from bot.kinds import SlackJob

ASK_AGAIN = SlackJob.ASK_AGAIN
WAIT_FOR_POST = 5.0


def ask_again_text(data: dict[str, Any], approvers: tuple[str, ...]) -> str:
    who = " ".join(layout.mention(approver) for approver in approvers)
    by = layout.actor(data.get("revisedBy")) if data.get("revisedBy") else "a reviewer"
    changes = "; ".join(layout.change_lines(data.get("changes") or {}, data.get("details") or {}))
    return (f"✏️ {who} {by} changed this request ({changes}). Votes were reset: earlier approvals no longer "
            f"count, so please review revision {data.get('revision')} again.")


class AskAgain:
    def __init__(self, client: AsyncWebClient, authority: Authority) -> None:
        self.client = client
        self.authority = authority

    def register(self, registry: JobRegistry) -> None:
        registry.register(ASK_AGAIN, self.run)

    async def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        snapshot = await render.load(ctx.db, payload["approval_id"])
        if snapshot is None or not snapshot.pending or snapshot.revision != payload.get("revision"):
            return  # decided since, or edited again (that edit asks for itself)
        if not snapshot.ts:
            raise Retry("the review message is not posted yet", delay=WAIT_FOR_POST)
        text = ask_again_text(snapshot.data, self.authority.approvers_for(snapshot.row))
        await self.client.chat_postMessage(channel=snapshot.channel, thread_ts=snapshot.ts, text=text)
