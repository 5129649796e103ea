"""Modal submissions: the reject note, and an edit-and-approve.

A submission is answered in the modal itself: `response_action: errors` keyed by the input's
block_id for anything the reviewer can fix, or an empty ack that closes it. So these listeners
decide before they ack, which Slack allows for view submissions (within its 3 seconds).

The modal's private_metadata names the request and the revision it showed; a submission on an
older revision changes nothing and says so in the modal, and metadata that is not ours is refused.
"""

from collections.abc import Collection
from typing import Any

from api.approvals.authority import NotAnApprover
from api.approvals.edit_currency import edit_currency
from api.approvals.enums import Verdict
from api.approvals.schemas import approval_out
from api.errors import UpstreamUnavailable, ValidationFailed
from bot import layout, render
from bot.blocks import read_edit_submission, read_note
from bot.handlers.common import (
    Deps,
    actor_of,
    already_text,
    audit_refusal,
    authorised,
    refresh,
    refusal_text,
    stale_text,
)
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


async def submit(ack: Any, deps: Deps, body: dict[str, Any], snapshot: render.Snapshot | None, verdict: Verdict,
                 *, revision: int, note: str | None, edits: dict[str, Any] | None,
                 fields: Collection[str] = ()) -> None:
    async def refuse(text: str) -> None:
        await ack(response_action="errors", errors={BlockId.NOTE: text})

    if snapshot is None:
        return await refuse("This request no longer exists in Cheqpoint.")
    if not await authorised(deps, None, body, snapshot, verdict):
        return await refuse(refusal_text(deps, snapshot))
    try:
        result = await deps.container.decisions.decide(snapshot.id, actor_of(body), verdict, note=note, edits=edits,
                                                       revision=revision)
    except NotAnApprover:
        return await refuse(refusal_text(deps, snapshot))
    except ValidationFailed as exc:
        return await ack(response_action="errors", errors=errors_by_block(exc, fields))
    except UpstreamUnavailable as exc:
        block = field_block_id("amount_cents") if "amount_cents" in fields else BlockId.NOTE
        return await ack(response_action="errors", errors={block: f"{exc.detail}. Try again in a moment."})
    if result.outcome == "already_final":
        await refresh(deps, snapshot.id)
        return await refuse(already_text(approval_out(result.approval)))
    if result.outcome == "stale":
        await refresh(deps, snapshot.id)
        current = await render.load(deps.db, snapshot.id)
        return await refuse(stale_text(current.data if current else snapshot.data) + "\nClose this form and "
                            "review the request again.")
    if result.outcome == "duplicate_vote":
        return await refuse("You have already approved this request; another approver must decide.")
    await ack()


async def _reference(ack: Any, view: dict[str, Any]) -> ButtonRef | None:
    """The request and revision this form was opened on; a form that is not ours gets a modal error."""
    try:
        return ButtonRef.loads(view.get("private_metadata"))
    except ValueError:
        await ack(response_action="errors",
                  errors={BlockId.NOTE: "This form was not opened by Cheqpoint; nothing was recorded."})
        return None


def register(app: Any, deps: Deps) -> None:
    @app.view(CallbackId.REJECT_MODAL)
    async def rejected(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        ref = await _reference(ack, view)
        if ref is None:
            return
        note = read_note(view["state"]["values"])
        if note is None:
            return await ack(response_action="errors",
                             errors={BlockId.NOTE: "Say why: the agent and the audit trail both need it."})
        snapshot = await render.load(deps.db, ref.approval_id)
        await submit(ack, deps, body, snapshot, Verdict.REJECT, revision=ref.version, note=note, edits=None)

    @app.view(CallbackId.EDIT_MODAL)
    async def edited(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        ref = await _reference(ack, view)
        if ref is None:
            return
        values = view["state"]["values"]
        snapshot = await render.load(deps.db, ref.approval_id)
        if snapshot is None or ref.version != snapshot.revision:
            # Gone, or the request changed since the form opened: the decision service says which
            # (and audits it) before the inputs are read against details they were not filled from.
            return await submit(ack, deps, body, snapshot, Verdict.APPROVE, revision=ref.version, note=None, edits=None)
        fields = render.editable_fields(snapshot.row)
        current = snapshot.row.effective_details
        currency = await edit_currency(snapshot.row, deps.container.gateway)
        edits, errors = read_edit_submission(values, fields, currency, current_details=current)
        if errors:
            await audit_refusal(deps, snapshot, actor_of(body), {"reason": "edit refused", "errors": errors,
                                                                 "revision": ref.version},
                                event="decision.edit_refused")
            return await ack(response_action="errors", errors=errors)
        # Prefilled inputs come back unchanged; only real changes are edits (and fill modifiedDetails).
        edits = {name: value for name, value in edits.items() if value != layout.lookup(current, name)}
        await submit(ack, deps, body, snapshot, Verdict.APPROVE, revision=ref.version, note=read_note(values),
                     edits=edits or None, fields={field.name for field in fields})
