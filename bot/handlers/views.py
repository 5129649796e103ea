"""Modal submissions: the reject note, and an edit-and-approve.

A submission is answered in the modal itself: `response_action: errors` keyed by the input's
block_id for anything the reviewer can fix, or an empty ack that closes it. So these listeners
decide before they ack, which Slack allows for view submissions (within its 3 seconds).
"""

from collections.abc import Collection
from typing import Any

from api.approvals.schemas import approval_out
from api.errors import UpstreamUnavailable, ValidationFailed
from bot import layout, render
from bot.blocks import read_edit_submission, read_note
from bot.handlers.actions import edit_currency
from bot.handlers.common import Deps, actor_of, already_text, authorised, refresh, refusal_text
from bot.ids import BlockId, ButtonRef, CallbackId, field_block_id


def errors_by_block(exc: ValidationFailed, field_names: set[str]) -> dict[str, str]:
    """The decision service's `loc: ["edits", field]` errors, placed on the modal's inputs."""
    placed: dict[str, str] = {}
    for error in exc.errors or []:
        loc = list(error.get("loc") or [])
        field = loc[1] if len(loc) > 1 and loc[0] == "edits" else None
        block = field_block_id(field) if field in field_names else BlockId.NOTE
        message = str(error.get("msg") or exc.detail)
        placed[block] = f"{placed[block]} {message}" if block in placed else message
    return placed or {BlockId.NOTE: exc.detail}


async def submit(ack: Any, deps: Deps, body: dict[str, Any], snapshot: render.Snapshot | None, verdict: str,
                 *, note: str | None, edits: dict[str, Any] | None, fields: Collection[str] = ()) -> None:
    async def refuse(text: str) -> None:
        await ack(response_action="errors", errors={BlockId.NOTE: text})

    if snapshot is None:
        return await refuse("This request no longer exists in Cheqpoint.")
    if not await authorised(deps, None, body, snapshot, verdict):
        return await refuse(refusal_text(deps, snapshot))
    try:
        result = await deps.container.decisions.decide(snapshot.id, actor_of(body), verdict, note=note, edits=edits)
    except ValidationFailed as exc:
        return await ack(response_action="errors", errors=errors_by_block(exc, fields))
    except UpstreamUnavailable as exc:
        block = field_block_id("amount_cents") if "amount_cents" in fields else BlockId.NOTE
        return await ack(response_action="errors", errors={block: f"{exc.detail}. Try again in a moment."})
    if result.outcome == "already_final":
        await refresh(deps, snapshot.id)
        return await refuse(already_text(approval_out(result.approval)))
    if result.outcome == "duplicate_vote":
        return await refuse("You have already approved this request; another approver must decide.")
    await ack()


def register(app: Any, deps: Deps) -> None:
    @app.view(CallbackId.REJECT_MODAL)
    async def rejected(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        note = read_note(view["state"]["values"])
        if note is None:
            return await ack(response_action="errors",
                             errors={BlockId.NOTE: "Say why: the agent and the audit trail both need it."})
        snapshot = await render.load(deps.db, ButtonRef.loads(view.get("private_metadata")).approval_id)
        await submit(ack, deps, body, snapshot, "reject", note=note, edits=None)

    @app.view(CallbackId.EDIT_MODAL)
    async def edited(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        snapshot = await render.load(deps.db, ButtonRef.loads(view.get("private_metadata")).approval_id)
        if snapshot is None:
            return await submit(ack, deps, body, None, "approve", note=None, edits=None)
        fields = render.editable_fields(snapshot.row)
        current = snapshot.row.effective_details
        currency = await edit_currency(deps, snapshot.row)
        edits, errors = read_edit_submission(values, fields, currency, current_details=current)
        if errors:
            return await ack(response_action="errors", errors=errors)
        # Prefilled inputs come back unchanged; only real changes are edits (and fill modifiedDetails).
        edits = {name: value for name, value in edits.items() if value != layout.lookup(current, name)}
        await submit(ack, deps, body, snapshot, "approve", note=read_note(values), edits=edits or None,
                     fields={field.name for field in fields})
