"""The "I'm on it" button, and the "… anyway" buttons of the warning a second reviewer gets."""

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from api.approvals.authority import NotAnApprover
from api.approvals.enums import Verdict
from api.outbox.service import enqueue
from bot import render
from bot.blocks import reject_modal
from bot.claims import claim
from bot.digests import digest_of, mark_changed
from bot.handlers.actions import _pending_for as pending_for
from bot.handlers.actions import answer
from bot.handlers.common import Deps, actor_of, authorised, button_ref, refusal_text, tell
from bot.ids import ActionId
from bot.notifier import UPDATE


def register(app: Any, deps: Deps) -> None:
    @app.action(ActionId.CLAIM)
    async def on_claim(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            ref = button_ref(body)
        except ValueError:
            await tell(client, body, "This button is not one Cheqpoint made; nothing was recorded.")
            return
        snapshot = await render.load(deps.db, ref.approval_id)
        if snapshot is None or not snapshot.pending:
            await tell(client, body, "This request is no longer waiting for review.")
            return
        if not await authorised(deps, client, body, snapshot, "claim"):
            return
        user = actor_of(body).id
        now = deps.container.clock()

        async def record(session: Any) -> tuple[bool, str | None]:
            new = await claim(session, snapshot.id, user, now)
            digest_id = await digest_of(session, snapshot.id)
            if new and digest_id is not None:
                await mark_changed(session, digest_id)  # the digest shows who is reviewing
            elif new and snapshot.ts:
                await enqueue(session, UPDATE, {"approval_id": snapshot.id})  # so does its own message
            return new, digest_id

        new, digest_id = await deps.db.write(record)
        if new and digest_id is None and snapshot.ts:
            # The request's own message: its thread tells everyone who took it.
            await client.chat_postMessage(channel=snapshot.channel, thread_ts=snapshot.ts,
                                          text=f"👀 <@{user}> is reviewing this request.")
        await tell(client, body, "👀 You are on it: other reviewers see that you are reviewing this request."
                   if new else "You had already said you are on it.")

    @app.action(ActionId.APPROVE_ANYWAY)
    async def approve_anyway(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        found = await pending_for(deps, client, body, Verdict.APPROVE)
        if found is None:
            return
        snapshot, ref = found
        try:
            result = await deps.container.decisions.decide(snapshot.id, actor_of(body), Verdict.APPROVE,
                                                           revision=ref.version)
        except NotAnApprover:
            await tell(client, body, refusal_text(deps, snapshot))
            return
        await answer(deps, client, body, result)

    @app.action(ActionId.REJECT_ANYWAY)
    async def reject_anyway(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        found = await pending_for(deps, client, body, Verdict.REJECT)
        if found is not None:
            snapshot, _ = found
            await client.views_open(trigger_id=body["trigger_id"], view=reject_modal(snapshot.data, snapshot.revision))
