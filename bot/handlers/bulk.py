"""A digest's buttons beyond each item's Approve and Reject: Approve all (with the modal listing
what it covers), Details, and the pager."""

from typing import Any

from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.enums import Verdict
from api.outbox.service import enqueue
from bot import render
from bot.blocks.common import mrkdwn_section
from bot.blocks.digest import PAGE_NEXT, PAGE_PREVIOUS, bulk_modal
from bot.bulk import BULK_APPROVE, BulkApprover, covered_by, covered_lines
from bot.digest_render import total_text
from bot.digests import mark_changed
from bot.handlers.common import Deps, actor_of, authorised, button_ref, tell
from bot.ids import ActionId, CallbackId, DigestRef
from bot.models import Digest

NOTHING_LEFT = "Nothing in this digest can be approved all at once any more; it has been brought up to date."


def _digest_ref(raw: str | None) -> DigestRef | None:
    try:
        return DigestRef.loads(raw)
    except ValueError:
        return None


def register(app: Any, deps: Deps) -> None:
    current_policy = deps.container.authority.policy  # the deployment's policy as it is now

    @app.action(ActionId.APPROVE_ALL)
    async def approve_all(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        ref = _digest_ref((body.get("actions") or [{}])[0].get("value"))
        if ref is None:
            await tell(client, body, "This button is not one Cheqpoint made; nothing was recorded.")
            return
        covered = await covered_by(deps.db, current_policy(), ref)
        if not covered or not covered.items:
            await tell(client, body, NOTHING_LEFT)
            await deps.db.write(lambda session: mark_changed(session, ref.digest_id))
            return
        if not await authorised(deps, client, body, covered.items[0][0], Verdict.APPROVE):
            return
        lines = covered_lines(covered, deps.container.clock())
        await client.views_open(trigger_id=body["trigger_id"],
                                view=bulk_modal(ref, lines, total_text(covered.snapshots)))

    @app.view(CallbackId.BULK_MODAL)
    async def confirmed(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        # Stored durably before Slack hears back: the worker decides each item, a crash repeats
        # the job, and a repeat finds the decided items decided.
        ref = _digest_ref(view.get("private_metadata"))
        if ref is None:
            await ack()
            return
        covered = await covered_by(deps.db, current_policy(), ref)
        count = len(covered.items) if covered else 0
        payload = BulkApprover.payload(ref, actor_of(body), count)
        key = f"{BULK_APPROVE}:{ref.digest_id}:{ref.generation}:{actor_of(body).id}"

        async def store(session: AsyncSession) -> None:
            await enqueue(session, BULK_APPROVE, payload, key=key)

        await deps.db.write(store)
        await ack()

    @app.action(ActionId.DETAILS)
    async def details(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            ref = button_ref(body)
        except ValueError:
            await tell(client, body, "This button is not one Cheqpoint made.")
            return
        snapshot = await render.load(deps.db, ref.approval_id)
        if snapshot is None:
            await tell(client, body, "This request no longer exists in Cheqpoint.")
            return
        _, blocks = render.message(snapshot, deps.container.settings)
        facts = [block for block in blocks if block.get("type") != "actions"]  # decide in the digest
        note = mrkdwn_section("_Approve or reject it with its buttons in the digest._").to_dict()
        view = View(type="modal", callback_id=CallbackId.DETAILS_MODAL, title="Request details", close="Close",
                    blocks=[*facts[:99], note]).to_dict()
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def turn_page(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        ref = _digest_ref((body.get("actions") or [{}])[0].get("value"))
        if ref is None:
            return

        async def store(session: AsyncSession) -> None:
            await session.execute(update(Digest).where(Digest.id == ref.digest_id).values(page=ref.page)
                                  .execution_options(synchronize_session=False))
            await mark_changed(session, ref.digest_id)

        await deps.db.write(store)

    app.action(PAGE_NEXT)(turn_page)
    app.action(PAGE_PREVIOUS)(turn_page)
