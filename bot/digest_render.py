"""The digest's render job: post the digest message, or bring it up to date with `chat.update`.

Many changes in a burst (a bulk approval decides a hundred items) enqueue many render jobs; each
compares the digest's change count with the one its message last showed and skips when current,
so the burst costs a few updates, not one per item.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.actions import get_action
from api.approvals.models import Approval
from api.config import Settings
from api.db import Database
from api.money import format_money
from api.outbox.registry import JobContext
from api.policy import Policy
from api.policy.models import Rule
from api.policy.reviewing import DEFAULT_BULK_CEILING
from bot import render
from bot.blocks.digest import BulkOffer, DigestItemView, DigestView, digest_message
from bot.delivery import digest_metadata, find_posted_digest
from bot.digests import request_render
from bot.models import Claim, Digest, DigestItem

log = logging.getLogger(__name__)


def age_text(created: datetime, now: datetime) -> str:
    minutes = int((now - created).total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def rule_of(policy: Policy, name: str | None) -> Rule | None:
    """The policy rule a request was reviewed under (by name), or None."""
    for compiled in policy.rules:
        if name is not None and compiled.rule.name == name:
            return compiled.rule
    return None


def bulk_covers(policy: Policy, action: str, rule_name: str | None, items: Sequence[render.Snapshot]) -> list[
        render.Snapshot] | None:
    """The waiting items "Approve all" may cover, or None when the rule does not offer it. Money
    movements above the rule's ceiling (or the default one) and whole refunds with no amount stay
    out: they are approved one by one."""
    rule = rule_of(policy, rule_name)
    if rule is None or not rule.bulk:
        return None
    spec = get_action(action)
    if spec is None or not spec.moves_money:
        return [s for s in items if s.pending]
    ceiling = rule.bulk_ceiling or DEFAULT_BULK_CEILING
    covered = []
    for snapshot in items:
        amount = snapshot.row.effective_details.get("amount_cents")
        if snapshot.pending and isinstance(amount, int) and not isinstance(amount, bool) and 0 < amount <= ceiling:
            covered.append(snapshot)
    return covered


def total_text(items: Sequence[render.Snapshot]) -> str:
    """"$420.00 USD", or "$420.00 USD + €30.00 EUR" for a group in several currencies."""
    totals: dict[str, int] = {}
    for snapshot in items:
        details = snapshot.row.effective_details
        amount, currency = details.get("amount_cents"), details.get("currency")
        if isinstance(amount, int) and isinstance(currency, str) and currency:
            totals[currency.lower()] = totals.get(currency.lower(), 0) + amount
    return " + ".join(format_money(amount, currency) for currency, amount in sorted(totals.items()))


async def load_items(ctx_db: Database, digest_id: str) -> tuple[Digest | None, list[DigestItem], list[render.Snapshot]]:
    async with ctx_db.read() as session:
        digest = await session.get(Digest, digest_id)
        items = list((await session.scalars(select(DigestItem).where(DigestItem.digest_id == digest_id))).all())
    ids = [item.approval_id for item in items]
    # Oldest first: ids are time-ordered and, unlike created_at, never tie.
    snapshots = await render.load_where(ctx_db, Approval.id.in_(ids), order_by=Approval.id,
                                        limit=max(1, len(ids))) if ids else []
    return digest, items, snapshots


class DigestRenderer:
    def __init__(self, client: AsyncWebClient, settings: Settings, policy: Callable[[], Policy]) -> None:
        self.client = client
        self.settings = settings
        self.policy = policy

    async def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        # Most render jobs of a burst find their change shown already: tell that from the digest's
        # row alone, before loading its items (hundreds, in a deep queue) for nothing.
        async with ctx.db.read() as session:
            current = await session.get(Digest, payload["digest_id"])
            if current is None or (current.ts is not None and current.rendered_changes == current.changes):
                return
        digest, items, snapshots = await load_items(ctx.db, payload["digest_id"])
        if digest is None or (digest.ts is not None and digest.rendered_changes == digest.changes):
            return
        changes, generation = digest.changes, digest.generation + 1
        if not await ctx.db.write(lambda session: _claim(session, digest.id, changes)):
            return  # another render job (here or on another replica) is showing this change or a later one
        try:
            await self._render(ctx, digest, items, snapshots, changes, generation)
        except BaseException:
            # Let the job's retry (or the next change) render it: the claim is given back.
            await ctx.db.write(lambda session: _release(session, digest.id, changes))
            raise

    async def _render(self, ctx: JobContext, digest: Digest, items: list[DigestItem],
                      snapshots: list[render.Snapshot], changes: int, generation: int) -> None:
        pending = [s for s in snapshots if s.pending]
        async with ctx.db.read() as session:
            claims = (await session.execute(select(Claim.approval_id, Claim.user_id).where(
                Claim.approval_id.in_([s.id for s in pending])).order_by(Claim.id))).all() if pending else []
        claimed: dict[str, list[str]] = {}
        for approval_id, user_id in claims:
            claimed.setdefault(approval_id, []).append(user_id)
        now = ctx.clock()
        covered = bulk_covers(self.policy(), digest.action, digest.rule, pending)
        outcomes: dict[str, int] = {}
        for s in snapshots:
            if not s.pending:
                outcomes[s.row.status] = outcomes.get(s.row.status, 0) + 1
        view = DigestView(
            digest_id=digest.id, generation=generation, heading=self._heading(digest, snapshots),
            pending=[DigestItemView(s.data, age_text(s.row.created_at, now), claimed.get(s.id, ()),
                                    confirm=_large(s)) for s in pending],
            outcomes=outcomes, page=digest.page,
            bulk=BulkOffer(len(covered), total_text(covered)) if covered else None)
        text, blocks = digest_message(view)
        ts = await self._show(digest, text, blocks)
        shown = {s.id: s.revision for s in pending}

        async def store(session: AsyncSession) -> None:
            # Something changed since this render claimed its change: a later render may already have
            # shown it, and Slack may then have applied this older picture over it. Show it again,
            # and do not close a digest a request has joined meanwhile.
            moved = await session.scalar(select(Digest.changes).where(Digest.id == digest.id)) != changes
            values: dict[str, Any] = {"ts": ts, "generation": generation}
            if moved:
                values["rendered_changes"] = -1
            elif not pending:
                values["open_key"] = None  # nothing waits: the group's next requests start afresh
            await session.execute(update(Digest).where(Digest.id == digest.id).values(**values)
                                  .execution_options(synchronize_session=False))
            if moved:
                await request_render(session, digest.id)
            for item in items:
                revision = shown.get(item.approval_id)
                if revision is not None and revision != item.shown_revision:
                    await session.execute(update(DigestItem).where(DigestItem.id == item.id).values(
                        shown_revision=revision, shown_generation=generation))

        await ctx.db.write(store)

    async def _show(self, digest: Digest, text: str, blocks: list[dict[str, Any]]) -> str:
        if digest.ts is None:
            # An earlier render (this job's last attempt, or another job of the same digest) may have
            # posted it without hearing Slack's answer: adopt that message rather than post a second.
            found = await find_posted_digest(self.client, digest.channel, digest.id, digest.created_at)
            if found is not None:
                log.info("Slack: digest %s's message was already posted (ts %s); keeping it", digest.id, found)
                await self.client.chat_update(channel=digest.channel, ts=found, text=text, blocks=blocks)
                return found
        if digest.ts is not None:
            try:
                await self.client.chat_update(channel=digest.channel, ts=digest.ts, text=text, blocks=blocks)
                return digest.ts
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    raise
                log.warning("Slack: digest %s's message was deleted; posting it again", digest.id)
        response = await self.client.chat_postMessage(channel=digest.channel, text=text, blocks=blocks,
                                                      metadata=digest_metadata(digest.id),
                                                      unfurl_links=False, unfurl_media=False)
        return str(response["ts"])

    def _heading(self, digest: Digest, snapshots: Sequence[render.Snapshot]) -> str:
        spec = get_action(digest.action)
        what = spec.group_words() if spec is not None else digest.action
        source = snapshots[0].connection_name if snapshots else digest.connection_id
        rule = f" (rule: {digest.rule})" if digest.rule else ""
        return f"{what} from {source}{rule}"


async def _claim(session: AsyncSession, digest_id: str, changes: int) -> bool:
    """Only one render shows a given change count: the one whose compare-and-set succeeds."""
    result = await session.execute(update(Digest).where(Digest.id == digest_id, Digest.rendered_changes < changes)
                                   .values(rendered_changes=changes).execution_options(synchronize_session=False))
    return bool(result.rowcount)


async def _release(session: AsyncSession, digest_id: str, changes: int) -> None:
    await session.execute(update(Digest).where(Digest.id == digest_id, Digest.rendered_changes == changes)
                          .values(rendered_changes=-1).execution_options(synchronize_session=False))


def _large(snapshot: render.Snapshot) -> bool:
    limit = render.confirm_over_minor(snapshot.data)
    amount = snapshot.row.effective_details.get("amount_cents")
    return limit is not None and isinstance(amount, int) and amount > limit
