"""Escalation: a request still undecided `escalate_after` its creation is raised in its thread,
mentioning `escalate_to`, and each approver gets a direct message. Business hours, when the rule
(or the defaults) names them, move an escalation that would fall outside them to the next opening.

Scheduled as one outbox job per request when it is created (keyed, so once), run by the worker;
a request decided meanwhile makes the job a no-op. Reminders are separate and unchanged.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.authority import Authority, is_group
from api.approvals.decisions import current_votes
from api.approvals.effects import Event, Subscriber
from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.config import Settings
from api.outbox.registry import JobContext, JobRegistry
from api.outbox.service import enqueue
from api.policy import Policy
from api.policy.reviewing import BusinessHours
from bot import layout, render
from bot.approvers import ApproverDirectory
from bot.digest_render import rule_of
from bot.kinds import SlackJob
from bot.models import Digest, DigestItem

log = logging.getLogger(__name__)

ESCALATE = SlackJob.ESCALATE


def escalation_plan(policy: Policy, approval: Approval) -> tuple[datetime, list[str]] | None:
    """When to escalate this request and whom to mention, or None when its rule does not escalate."""
    rule = rule_of(policy, approval.rule)
    defaults = policy.defaults
    after: timedelta | None = (rule.escalate_after if rule is not None else None) or defaults.escalate_after
    if after is None:
        return None
    escalate_to = (rule.escalate_to if rule is not None else None) or defaults.escalate_to or []
    hours: BusinessHours | None = (rule.business_hours if rule is not None else None) or defaults.business_hours
    due = approval.created_at + after
    if hours is not None:
        due = hours.next_open(due)
    return due, list(escalate_to)


def escalation_text(data: dict[str, Any], escalate_to: list[str], waited: str) -> str:
    who = " ".join(layout.mention(slack_id) for slack_id in escalate_to)
    ask = f"{who} please take a look." if who else "Please take a look."
    what = layout.literal(layout.headline(data.get("action", ""), data.get("details") or {}), 200)
    return f"⏰ Still undecided after {waited}: *{what}*. {ask}"


class Escalations:
    def __init__(self, client: AsyncWebClient, settings: Settings, authority: Authority,
                 directory: ApproverDirectory) -> None:
        self.client = client
        self.settings = settings
        self.authority = authority
        self.directory = directory

    def register(self, registry: JobRegistry) -> None:
        registry.register(ESCALATE, self.escalate)

    def subscriber(self) -> Subscriber:
        async def on_event(session: AsyncSession, approval: Approval, event: Event) -> None:
            if event != Event.CREATED or approval.status != ApprovalStatus.PENDING:
                return
            plan = escalation_plan(self.authority.policy(), approval)
            if plan is None or plan[0] >= approval.expires_at:
                return  # it expires first: the expiry tells people
            await enqueue(session, ESCALATE, {"approval_id": approval.id, "escalate_to": plan[1]},
                          run_at=plan[0], key=f"{ESCALATE}:{approval.id}")

        return on_event

    async def escalate(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        snapshot = await render.load(ctx.db, payload["approval_id"])
        if snapshot is None or not snapshot.pending:
            return
        waited = _waited(ctx.clock() - snapshot.row.created_at)
        text = escalation_text(snapshot.data, list(payload.get("escalate_to") or []), waited)
        channel, thread = await self._thread(ctx, snapshot)
        await self.client.chat_postMessage(channel=channel, thread_ts=thread, text=text, unfurl_links=False)
        voted = {vote.actor_id for vote in current_votes(snapshot.row)}
        for user in await self._approver_users(snapshot.row):
            if user not in voted:
                await self.client.chat_postMessage(channel=user, text=text + " It waits for your decision "
                                                   "in the review channel and in the app's Home tab.")

    async def _thread(self, ctx: JobContext, snapshot: render.Snapshot) -> tuple[str, str | None]:
        """The request's own message, else the digest listing it, else the review channel itself."""
        row = snapshot.row
        if snapshot.ts:
            return snapshot.channel, snapshot.ts
        async with ctx.db.read() as session:
            found = (await session.execute(select(Digest.channel, Digest.ts).join(
                DigestItem, DigestItem.digest_id == Digest.id).where(DigestItem.approval_id == row.id))).first()
        if found is not None and found[1]:
            return found[0], found[1]
        return self.settings.review_channel or "", None

    async def _approver_users(self, row: Approval) -> list[str]:
        users: list[str] = []
        for slack_id in self.authority.approvers_for(row):
            members = await self.directory.members(slack_id) if is_group(slack_id) else frozenset({slack_id})
            users.extend(sorted(members))
        return list(dict.fromkeys(users))


def _waited(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
