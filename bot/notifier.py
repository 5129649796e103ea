"""The outbox jobs that talk to Slack: post the review message, keep it current, remind, alert.

Every job reads the approval when it runs and renders its state then, so a job that was retried
for an hour still shows the truth, and two updates in a row cannot leave an older picture behind
(an update that raced a change enqueues itself again).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.models import Approval
from api.config import Settings
from api.logs import bound
from api.outbox.kinds import JobStatus
from api.outbox.models import Job
from api.outbox.registry import BatchItem, Handler, JobContext, JobRegistry, Retry, current_reservation
from api.outbox.service import enqueue
from bot import messages, render
from bot.blocks import AlertKind, alert_text, delivery_failed_text, reminder_text
from bot.blocks.notices import execution_update_text
from bot.delivery import find_posted, review_metadata
from bot.failures import classify
from bot.kinds import SlackJob
from bot.models import SlackMessage

log = logging.getLogger(__name__)

POST = SlackJob.POST_REQUEST
UPDATE = SlackJob.UPDATE_MESSAGE
ALERT = SlackJob.ALERT
REMIND = SlackJob.REMIND
REPLY = SlackJob.THREAD_REPLY

SLACK_FAILED = "slack_failed"  # an alert kind beside bot.blocks.AlertKind's
# How long an update or reminder waits for the review message it belongs to.
WAIT_FOR_POST = 5.0
# bot.digests' absorb for a batch's first attempts (bot.digest_batch): for each request, in order,
# True when it went into a digest instead of a message of its own.
AbsorbMany = Callable[[list[JobContext], list[str]], Awaitable[list[bool]]]


def post_key(approval_id: str) -> str:
    return f"slack.post:{approval_id}"


def execution_update(approval: Approval) -> dict[str, Any]:
    """The execution as a Stripe event left it, carried in the jobs that tell people about it."""
    result = approval.execution_result or {}
    return {"status": approval.execution_status, "stripeObjectId": approval.stripe_object_id,
            "object": result.get("object"), "objectStatus": result.get("status"), "error": approval.execution_error}


async def enqueue_execution_update(session: AsyncSession, approval: Approval, alerts_channel: str | None) -> None:
    """A later outcome: refresh the review message, reply in its thread, alert finance.

    Keyed by the row version the change produced, so each change is told once however often the
    subscriber runs, and two changes in a row are each told.
    """
    update_payload = {"approval_id": approval.id, "update": execution_update(approval)}
    change = f"{approval.id}:{approval.version}"
    if await has_review_message(session, approval):
        await enqueue(session, UPDATE, {"approval_id": approval.id})
        await enqueue(session, REPLY, update_payload, key=f"slack.reply:{change}")
    if alerts_channel:
        await enqueue(session, ALERT, {"kind": AlertKind.EXECUTION_UPDATED, **update_payload},
                      key=f"slack.alert:{AlertKind.EXECUTION_UPDATED}:{change}")


async def has_review_message(session: AsyncSession, approval: Approval) -> bool:
    """A request that went to people has (or will have) a message; a rule's decision has none.

    Asked in the effect's transaction: only a rule's decision costs a look at Slack's table."""
    if (approval.decided_by or {}).get("type") != "rule":
        return True
    return await messages.message_of(session, approval.id) is not None


class Notifier:
    def __init__(self, client: AsyncWebClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def register(self, registry: JobRegistry) -> None:
        registry.register(POST, self.post_request)
        registry.register(UPDATE, self.update_message)
        registry.register(ALERT, self.alert)
        registry.register(REMIND, self.remind)
        registry.register(REPLY, self.reply_in_thread)

    # -- jobs ---------------------------------------------------------------------------------------

    async def post_request(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        snapshot = await render.load(ctx.db, payload["approval_id"])
        if snapshot is None or snapshot.ts:
            return
        channel = self.settings.review_channel or ""
        found = None
        if ctx.attempt > 1:  # an earlier attempt may have posted without our hearing the answer
            found = await self._call(ctx, "look for the review message", channel, snapshot,
                                     lambda: find_posted(self.client, channel, snapshot.id, snapshot.row.created_at))
        if found is not None:
            log.info("the review message for %s was already posted (ts %s); keeping it", snapshot.id, found)
            response: Any = {"channel": channel, "ts": found}
        else:
            response = await self._post(ctx, snapshot)
        await ctx.db.write(lambda session: self._store(session, [(snapshot, response, found is not None)], ctx.clock()))

    async def post_requests(self, items: list[BatchItem], *, single: Handler,
                            absorb: AbsorbMany | None = None) -> list[BaseException | None]:
        """The post job for several requests at once (the worker's batch): what `single` (the post
        job, digests in front) does for each, with one snapshot read and one store for them all, and
        their posts in flight together (Slack's budget, drawn per call, still paces them).

        A job's later attempt runs alone through `single`: it may have to find a message an earlier
        attempt posted unheard. A post that fails fails only its own job; a store that fails fails
        the jobs it stored, whose retries find their messages (so nothing is posted twice)."""
        errors: list[BaseException | None] = [None] * len(items)
        later = [i for i, item in enumerate(items) if item.ctx.attempt > 1]
        firsts = [i for i, item in enumerate(items) if item.ctx.attempt <= 1]

        async def alone(i: int) -> None:
            current_reservation.set(items[i].reservation)
            await single(items[i].ctx, items[i].payload)

        async def first_attempts() -> None:
            if not firsts:
                return
            own = firsts
            if absorb is not None:
                taken = await absorb([items[i].ctx for i in firsts], [items[i].payload["approval_id"] for i in firsts])
                own = [i for i, listed in zip(firsts, taken, strict=True) if not listed]
            if not own:
                return
            ids = {i: items[i].payload["approval_id"] for i in own}
            snapshots = await render.load_many(items[own[0]].ctx.db, list(ids.values()))
            # Gone, or posted already (a repeated job): nothing to post, as for one job.
            due = [(i, snapshots[ids[i]]) for i in own if ids[i] in snapshots and not snapshots[ids[i]].ts]
            done: list[tuple[int, render.Snapshot, Any]] = []

            async def post(i: int, snapshot: render.Snapshot) -> None:
                done.append((i, snapshot, await self._post_for(items[i], snapshot)))

            try:
                answers = await asyncio.gather(*(post(i, snapshot) for i, snapshot in due), return_exceptions=True)
                for (i, _), answer in zip(due, answers, strict=True):
                    if isinstance(answer, BaseException):
                        errors[i] = answer
            finally:
                # Also when the worker is told to stop mid-batch: the posts Slack answered are recorded
                # before their jobs are handed back (an attempt handed back is run as a first one,
                # which does not look for an earlier post).
                if done:
                    await asyncio.shield(self._store_posted(items, done, errors))

        outcomes = await asyncio.gather(first_attempts(), *(alone(i) for i in later), return_exceptions=True)
        if isinstance(outcomes[0], BaseException):  # the batch's reads failed: every first attempt retries
            for i in firsts:
                errors[i] = errors[i] or outcomes[0]
        for i, outcome in zip(later, outcomes[1:], strict=True):
            errors[i] = outcome if isinstance(outcome, BaseException) else None
        return errors

    async def _store_posted(self, items: list[BatchItem], done: list[tuple[int, render.Snapshot, Any]],
                            errors: list[BaseException | None]) -> None:
        ctx = items[done[0][0]].ctx
        posted = [(snapshot, response, False) for _, snapshot, response in done]
        try:
            await ctx.db.write(lambda session: self._store(session, posted, ctx.clock()))
        except Exception as exc:  # their retries look for the messages and adopt them
            for i, _, _ in done:
                errors[i] = exc

    async def _post_for(self, item: BatchItem, snapshot: render.Snapshot) -> Any:
        """One request's post in a batch: its own task, so the slot its job was promised is its own."""
        current_reservation.set(item.reservation)
        with bound(approval_id=snapshot.id):
            return await self._post(item.ctx, snapshot)

    async def _post(self, ctx: JobContext, snapshot: render.Snapshot) -> Any:
        channel = self.settings.review_channel or ""
        text, blocks = render.message(snapshot, self.settings)
        return await self._call(ctx, "post the review message", channel, snapshot, lambda: self.client
                                .chat_postMessage(channel=channel, text=text, blocks=blocks,
                                                  metadata=review_metadata(snapshot.id),
                                                  unfurl_links=False, unfurl_media=False))

    async def _store(self, session: AsyncSession, posted: list[tuple[render.Snapshot, Any, bool]],
                     now: datetime) -> None:
        """Record the messages (the first one recorded stays: see bot.messages.record), in one
        statement executed for all; bring up to date those that changed while being posted."""
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        await session.execute(
            insert(SlackMessage.__table__).on_conflict_do_nothing(index_elements=["approval_id"]),
            [{"approval_id": snapshot.id, "channel": response["channel"], "ts": response["ts"], "posted_at": now}
             for snapshot, response, _ in posted])
        ids = [snapshot.id for snapshot, _, _ in posted]
        versions = dict((await session.execute(select(Approval.id, Approval.version)
                                               .where(Approval.id.in_(ids)))).all())
        for snapshot, _, found in posted:
            # Decided or voted on while we were posting, or a message an earlier attempt posted
            # (rendered then): bring it up to date.
            if versions.get(snapshot.id) != snapshot.version or found:
                await enqueue(session, UPDATE, {"approval_id": snapshot.id})

    async def update_message(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        snapshot = await self._posted(ctx, payload["approval_id"])
        if snapshot is None:
            return
        channel, ts = snapshot.channel, snapshot.ts
        text, blocks = render.message(snapshot, self.settings)
        await self._call(ctx, "update the review message", channel, snapshot,
                         lambda: self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks))
        latest = await render.load(ctx.db, snapshot.id)
        if latest is not None and latest.version != snapshot.version:
            raise Retry("the approval changed while its message was being updated", delay=0)

    async def remind(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        snapshot = await self._posted(ctx, payload["approval_id"])
        if snapshot is None or not snapshot.pending:
            return
        channel, ts = snapshot.channel, snapshot.ts
        # Whoever may decide it now (the core's Authority, as for the buttons), not who was asked at intake.
        text = reminder_text(snapshot.data, list(ctx.services.authority.approvers_for(snapshot.row)))
        await self._call(ctx, "post the reminder", channel, snapshot,
                         lambda: self.client.chat_postMessage(channel=channel, thread_ts=ts, text=text))

    async def reply_in_thread(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        snapshot = await self._posted(ctx, payload["approval_id"])
        if snapshot is None:
            return
        channel, ts = snapshot.channel, snapshot.ts
        text = execution_update_text(payload["update"], test_mode=self.settings.stripe_test_mode)
        await self._call(ctx, "reply in the review thread", channel, snapshot,
                         lambda: self.client.chat_postMessage(channel=channel, thread_ts=ts, text=text,
                                                              unfurl_links=False))

    async def alert(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        channel = self.settings.alerts_channel
        snapshot = await render.load(ctx.db, payload["approval_id"])
        if not channel or snapshot is None:
            return
        kind = payload["kind"]
        if kind == SLACK_FAILED:
            text = delivery_failed_text(snapshot.data, payload["what"], payload["channel"], payload["error"])
        else:
            text = alert_text(kind, snapshot.data, await self._permalink(snapshot), update=payload.get("update"),
                              test_mode=self.settings.stripe_test_mode)
        await self._call(ctx, "post the finance alert", channel, snapshot,
                         lambda: self.client.chat_postMessage(channel=channel, text=text, unfurl_links=False),
                         alert_on_park=False)  # an alert about a failed alert would fail the same way

    # -- helpers ------------------------------------------------------------------------------------

    async def _posted(self, ctx: JobContext, approval_id: str) -> render.Snapshot | None:
        """The approval once its message exists; None when there is none and none is coming."""
        snapshot = await render.load(ctx.db, approval_id)
        if snapshot is None or snapshot.ts:
            return snapshot
        async with ctx.db.read() as session:
            waiting = await session.scalar(select(Job.id).where(
                Job.key == post_key(approval_id), Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))))
        if waiting is not None:
            raise Retry("the review message is not posted yet", delay=WAIT_FOR_POST)
        return None  # decided by a rule, or its post was parked: there is no message to touch

    async def _permalink(self, snapshot: render.Snapshot) -> str | None:
        if not snapshot.ts:
            return None
        try:
            response = await self.client.chat_getPermalink(channel=snapshot.channel, message_ts=snapshot.ts)
        except Exception as exc:  # the alert matters more than its link
            log.warning("no permalink for %s: %r", snapshot.id, exc)
            return None
        return response.get("permalink")

    async def _call(self, ctx: JobContext, what: str, channel: str, snapshot: render.Snapshot,
                    call: Callable[[], Awaitable[Any]], *, alert_on_park: bool = True) -> Any:
        try:
            return await call()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            if failure.needs_person:
                log.error("Slack refused to %s for %s in channel %s: %s. The job is parked; fix the Slack "
                          "set-up (invite the bot, check the channel id and the token). The request can be "
                          "decided meanwhile with `cheqpoint approvals approve|reject %s`.",
                          what, snapshot.id, channel, failure.error, snapshot.id)
                alerts = self.settings.alerts_channel
                if alert_on_park and alerts and alerts != channel and not failure.token_problem:
                    payload = {"kind": SLACK_FAILED, "approval_id": snapshot.id, "what": what,
                               "channel": channel, "error": failure.error}
                    await ctx.db.write(lambda session: enqueue(session, ALERT, payload))
            raise failure.outcome(what) from exc
