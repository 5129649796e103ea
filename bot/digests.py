"""Digests: when the review channel's queue is deep, requests are grouped (same Connection,
action and rule) into one message each group instead of one message each request.

The grouping happens in the post job: before a request gets its own message, `absorb` looks at
how many requests are waiting to be shown. Above `CHEQPOINT_SLACK_DIGEST_THRESHOLD`, the request
and every other waiting one of its group join the group's open digest (opened now when there is
none); later ones of that group join it too while it stays open. A digest closes when nothing in
it is waiting. Only one digest per group can be open (a unique key), on every replica at once.
"""

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.effects import Event, Subscriber
from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.config import Settings
from api.ids import new_id
from api.outbox.kinds import JobStatus
from api.outbox.models import Job
from api.outbox.registry import JobContext, JobRegistry
from api.outbox.service import enqueue
from bot.kinds import SlackJob
from bot.messages import posted
from bot.models import Digest, DigestItem, SlackMessage

log = logging.getLogger(__name__)

RENDER = SlackJob.RENDER_DIGEST
POST_KIND = SlackJob.POST_REQUEST  # the job whose requests may join a digest
PostHandler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


def group_key(row: Any) -> str:
    """`row`: an Approval, or a row with its connection_id, action and rule."""
    return f"{row.connection_id}|{row.action}|{row.rule or ''}"


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def mark_changed(session: AsyncSession, digest_id: str) -> None:
    """Something in the digest changed: count it and ask for a render (renders skip when current)."""
    await session.execute(update(Digest).where(Digest.id == digest_id)
                          .values(changes=Digest.changes + 1).execution_options(synchronize_session=False))
    await request_render(session, digest_id)


async def request_render(session: AsyncSession, digest_id: str) -> None:
    """A render job for the digest, unless one is queued already: it reads the digest when it runs,
    so it shows this change too. One job per change would each hold a slot of chat.update's budget
    (deferred jobs keep theirs) and mostly find nothing left to show, starving other updates."""
    queued = await session.scalar(select(Job.id).where(
        Job.kind == RENDER, Job.status == JobStatus.QUEUED, Job.payload["digest_id"].as_string() == digest_id).limit(1))
    if queued is None:
        await enqueue(session, RENDER, {"digest_id": digest_id})


async def digest_of(session: AsyncSession, approval_id: str) -> str | None:
    return await session.scalar(select(DigestItem.digest_id).where(DigestItem.approval_id == approval_id))


# The statements every post job runs, built once: building them is most of their cost in Python.
_ABSORB_READ = select(
    Approval.id, Approval.status, Approval.connection_id, Approval.action, Approval.rule,
    exists().where(SlackMessage.approval_id == bindparam("approval_id")).label("has_message"),
    select(DigestItem.digest_id).where(DigestItem.approval_id == bindparam("approval_id")).scalar_subquery()
    .label("listed"),
    # The group's open digest: `group_key` spelled in SQL, so the lookup rides in the same statement.
    select(Digest.id).where(Digest.open_key == Approval.connection_id + "|" + Approval.action + "|"
                            + func.coalesce(Approval.rule, "")).scalar_subquery().label("open_digest"),
).where(Approval.id == bindparam("approval_id"))
_IN_OPEN_DIGESTS = (select(func.count()).select_from(DigestItem).join(Digest, Digest.id == DigestItem.digest_id)
                    .join(Approval, Approval.id == DigestItem.approval_id)
                    .where(Digest.open_key.is_not(None), Approval.status == ApprovalStatus.PENDING))


@functools.cache
def _waiting_counts(up_to: int) -> Any:
    """Post jobs queued or running whose request no digest lists, counted up to `up_to`, and the
    pending requests in open digests: one statement."""
    listed = exists().where(DigestItem.approval_id == Job.payload["approval_id"].as_string())
    first = (select(Job.id).where(Job.kind == POST_KIND, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
                                  Job.payload["approval_id"].as_string().is_not(None), ~listed)
             .limit(up_to).subquery())
    return select(select(func.count()).select_from(first).scalar_subquery(), _IN_OPEN_DIGESTS.scalar_subquery())


class Digests:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def wrap_posting(self, registry: JobRegistry) -> None:
        """Put `absorb` in front of the post job already registered (bot.notifier's)."""
        kind = registry.get(POST_KIND)
        if kind is None:
            return
        post = kind.handler

        async def post_or_digest(ctx: JobContext, payload: dict[str, Any]) -> None:
            if not await self.absorb(ctx, payload["approval_id"]):
                await post(ctx, payload)

        registry.register(POST_KIND, post_or_digest, backoff=kind.backoff)

    def subscriber(self) -> Subscriber:
        """A decided, revised or voted-on request refreshes the digest listing it (in its transaction)."""

        async def on_event(session: AsyncSession, approval: Approval, event: Event) -> None:
            if event == "created":
                return
            digest_id = await digest_of(session, approval.id)
            if digest_id is not None:
                await mark_changed(session, digest_id)

        return on_event

    async def absorb(self, ctx: JobContext, approval_id: str) -> bool:
        """True when the request is (now) listed in a digest rather than posted on its own."""
        return bool(await ctx.db.write(lambda session: self._absorb(session, approval_id, ctx.attempt)))

    async def _absorb(self, session: AsyncSession, approval_id: str, attempt: int) -> bool:
        # The columns grouping needs, its own message and the digest listing it, in one statement:
        # every request sent to review passes here, and each statement is a round trip to SQLite's
        # thread (loading the ORM object took two, its votes included, and two more lookups followed).
        row = (await session.execute(_ABSORB_READ, {"approval_id": approval_id})).one_or_none()
        if row is None or row.status != ApprovalStatus.PENDING or row.has_message:
            return False
        if row.listed is not None:
            return True  # listed already (a repeated job, or a digest took it with its group)
        if attempt > 1:
            # An earlier attempt may have posted its own message without hearing Slack's answer:
            # the post job must find and adopt it, or its buttons would stay beside the digest's.
            return False
        key, digest_id = group_key(row), row.open_digest
        if digest_id is None:
            threshold = self.settings.slack_digest_threshold
            if await self._waiting(session, up_to=threshold + 1) <= threshold:
                return False
            digest_id = await self._open(session, row, key)
            await self._add_group(session, digest_id, row, key)
        else:
            # The group's others join by their own post jobs: looking them up here would cost every
            # request of a deep queue a scan of all its group's waiting requests.
            await session.execute(_insert(session)(DigestItem).values(
                digest_id=digest_id, approval_id=row.id, added_at=session.info["clock"]()).on_conflict_do_nothing(
                index_elements=["approval_id"]))
        await mark_changed(session, digest_id)
        return True

    async def _waiting(self, session: AsyncSession, *, up_to: int) -> int:
        """Requests waiting for reviewers' eyes: a post job not yet done (and not listed in a digest),
        plus those still pending in open digests. While digests are working the queue down, new
        groups join digests too instead of posting one by one beside them.

        Counted in the database and only `up_to` far: past the threshold the answer is the same. Every
        post job asks, so reading every waiting job's payload made a queue of N cost N² (the
        review-message benchmark: about a third of the post job's time at a thousand)."""
        posts, in_digests = (await session.execute(_waiting_counts(up_to))).one()
        return int(posts or 0) if (posts or 0) >= up_to else int(posts or 0) + int(in_digests or 0)

    async def _open(self, session: AsyncSession, row: Any, key: str) -> str:
        now = session.info["clock"]()
        values = {"id": new_id("dgs"), "group_key": key, "open_key": key, "channel": self.settings.review_channel or "",
                  "connection_id": row.connection_id, "action": row.action, "rule": row.rule, "page": 0,
                  "changes": 0, "rendered_changes": -1, "generation": 0, "created_at": now}
        opened = await session.execute(_insert(session)(Digest).values(**values).on_conflict_do_nothing(
            index_elements=["open_key"]))
        digest_id = await session.scalar(select(Digest.id).where(Digest.open_key == key))
        assert digest_id is not None
        if opened.rowcount == 1:  # not when another job (or replica) opened it first: one line per digest
            log.info("Slack: the review queue is deep; requests of %s/%s now join digest %s",
                     row.connection_id, row.action, digest_id)
        return digest_id

    async def _add_group(self, session: AsyncSession, digest_id: str, row: Any, key: str) -> None:
        """This request and every other of its group still waiting for its own message."""
        connection_id, action, rule = row.connection_id, row.action, row.rule
        candidates = [row.id]
        rule_match = Approval.rule.is_(None) if rule is None else Approval.rule == rule
        others = await session.scalars(select(Approval.id).where(
            Approval.connection_id == connection_id, Approval.action == action, rule_match,
            Approval.status == ApprovalStatus.PENDING, ~posted(), Approval.id != row.id))
        queued = await _queued_posts(session, (JobStatus.QUEUED,), unattempted=True)
        candidates += [other for other in others.all() if other in queued]
        now = session.info["clock"]()
        for approval_id in candidates:
            await session.execute(_insert(session)(DigestItem).values(
                digest_id=digest_id, approval_id=approval_id, added_at=now).on_conflict_do_nothing(
                index_elements=["approval_id"]))


async def _queued_posts(session: AsyncSession, statuses: tuple[JobStatus, ...], *,
                        unattempted: bool = False) -> set[str]:
    """The requests with a post job in these states that no digest lists yet. `unattempted`: only
    jobs no attempt has run yet (an attempt deferred for Slack's budget is given back, so it counts
    as not run); one that ran may have posted the request's own message unheard."""
    query = select(Job.payload).where(Job.kind == POST_KIND, Job.status.in_(statuses))
    if unattempted:
        query = query.where(Job.attempts == 0)
    payloads = await session.scalars(query)
    ids = {p.get("approval_id") for p in payloads.all() if isinstance(p, dict) and p.get("approval_id")}
    if not ids:
        return set()
    listed = await session.scalars(select(DigestItem.approval_id).where(DigestItem.approval_id.in_(ids)))
    return ids - set(listed.all())
