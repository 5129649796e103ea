"""Button clicks on a review message or in App Home. Approve decides, then acks; the others ack
first (they open a modal).

Clicks carry a ButtonRef (approval id + the revision the message showed). Votes do not change the
revision, edits do: a click on an older revision changes nothing, the person is told what the
request is now, and the message is refreshed. Who may click is the core's `may_decide`, which the
decision service asks again itself.
"""

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from api.approvals.authority import NotAnApprover
from api.approvals.decisions import DecisionResult
from api.approvals.edit_currency import edit_currency
from api.approvals.enums import Verdict
from api.approvals.schemas import approval_out
from bot import render
from bot.blocks import edit_modal, reject_modal
from bot.claims import warn_if_claimed
from bot.handlers import home
from bot.handlers.common import (
    Deps,
    actor_of,
    already_text,
    audit_refusal,
    authorised,
    button_ref,
    from_home,
    refresh,
    refusal_text,
    refuse_stale,
    stale_text,
    tell,
    votes_text,
)
from bot.ids import ActionId, ButtonRef

log = logging.getLogger(__name__)


async def _pending_for(deps: Deps, client: AsyncWebClient, body: dict[str, Any],
                       verdict: Verdict) -> tuple[render.Snapshot, ButtonRef] | None:
    """The clicked request when this person may act on it now; otherwise they have been told why."""
    try:
        ref = button_ref(body)
    except ValueError:
        await tell(client, body, "This button is not one Cheqpoint made; nothing was recorded.")
        return None
    snapshot = await render.load(deps.db, ref.approval_id)
    if snapshot is None:
        await tell(client, body, "This request no longer exists in Cheqpoint.")
        return None
    if not await authorised(deps, client, body, snapshot, verdict):
        return None
    if not snapshot.pending:
        await audit_refusal(deps, snapshot, actor_of(body), {"reason": f"already {snapshot.row.status}",
                                                             "verdict": verdict})
        await tell(client, body, already_text(snapshot.data))
        await refresh(deps, snapshot.id)
        return None
    if ref.version != snapshot.revision:
        await refuse_stale(deps, client, body, snapshot, ref.version, verdict)
        return None
    return snapshot, ref


async def answer(deps: Deps, client: AsyncWebClient, body: dict[str, Any], result: DecisionResult) -> None:
    """Tell the reviewer what became of their decision when the message itself will not."""
    data = approval_out(result.approval)
    if result.outcome == "vote":
        await tell(client, body, f"✅ Your approval is recorded: {votes_text(data)}.")
    elif result.outcome == "duplicate_vote":
        await tell(client, body, f"You have already approved this request ({votes_text(data)}).")
    elif result.outcome == "already_final":
        await tell(client, body, already_text(data))
        await refresh(deps, result.approval.id)
    elif result.outcome == "stale":
        snapshot = await render.load(deps.db, result.approval.id)
        await tell(client, body, stale_text(snapshot.data if snapshot else data))
        await refresh(deps, result.approval.id)
    if from_home(body):
        await home.publish(deps, client, actor_of(body).id)


def register(app: Any, deps: Deps) -> None:
    @app.action(ActionId.APPROVE)
    async def approve(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        # Decided before the ack (a transaction of milliseconds, well within Slack's 3 s): a process
        # that dies after acknowledging cannot lose a click Slack considers delivered.
        acked = False
        try:
            found = await _pending_for(deps, client, body, Verdict.APPROVE)
            if found is None:
                return
            snapshot, ref = found
            if await warn_if_claimed(deps.db, client, body, snapshot, Verdict.APPROVE):
                return  # someone else is on it: they are told, and may still decide with "Approve anyway"
            try:
                result = await deps.container.decisions.decide(snapshot.id, actor_of(body), Verdict.APPROVE,
                                                               revision=ref.version)
            except NotAnApprover:  # removed from the approvers between the two checks
                await tell(client, body, refusal_text(deps, snapshot))
                return
            await ack()
            acked = True
            await answer(deps, client, body, result)
        finally:
            if not acked:
                await ack()

    @app.action(ActionId.REJECT)
    async def reject(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        found = await _pending_for(deps, client, body, Verdict.REJECT)
        if found is not None:
            snapshot, _ = found
            if await warn_if_claimed(deps.db, client, body, snapshot, Verdict.REJECT):
                return
            await client.views_open(trigger_id=body["trigger_id"], view=reject_modal(snapshot.data, snapshot.revision))

    @app.action(ActionId.EDIT)
    async def edit(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        found = await _pending_for(deps, client, body, Verdict.APPROVE)
        if found is None:
            return
        snapshot, _ = found
        fields = render.editable_fields(snapshot.row)
        if not fields:
            await tell(client, body, "Nothing in this request can be changed; approve or reject it as it is.")
            return
        currency = await edit_currency(snapshot.row, deps.container.gateway)
        view = edit_modal(snapshot.data, snapshot.revision, fields, currency=currency)
        await client.views_open(trigger_id=body["trigger_id"], view=view)
