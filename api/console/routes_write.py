"""The console's forms: approve, reject with a note, edit and approve, and redeliver a callback.

Each decision names the revision the page showed and goes through the core's `Decisions.decide`,
which asks who may decide, refuses a stale revision, records the vote and releases held agents;
the Slack message is brought up to date by the same effects as a click in Slack.
"""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.approvals.actors import Actor
from api.approvals.authority import NotAnApprover
from api.approvals.edit_currency import edit_currency
from api.approvals.enums import Verdict
from api.approvals.schemas import approval_out
from api.callbacks import service as callbacks
from api.console.context import Console, Viewer
from api.console.edits import read_edits
from api.console.gate import form_sender
from api.console.pages import secure
from api.console.routes_read import APPROVAL_ID, show_request
from api.errors import AppError, UpstreamUnavailable, ValidationFailed

VERDICTS = ("approve", "reject", "edit")  # the form's buttons; "edit" approves with changes
MAX_NOTE = 2000


def register(router: APIRouter, console: Console) -> None:
    container = console.container

    @router.post("/requests/{approval_id}/decide")
    async def decide(request: Request, approval_id: str) -> Response:
        sent = await form_sender(console, request)
        if isinstance(sent, Response):
            return sent
        viewer, form = sent
        if not APPROVAL_ID.fullmatch(approval_id):
            return await show_request(console, viewer, approval_id)  # "no such request"
        verdict, note = form.get("verdict"), (form.get("note") or "").strip() or None
        revision_text = form.get("revision") or ""
        if verdict not in VERDICTS or not revision_text.isdigit() or len(revision_text) > 9:
            return await show_request(console, viewer, approval_id, status=400,
                                      problem="That form was incomplete; nothing was recorded.")
        if note is not None and len(note) > MAX_NOTE:
            return await show_request(console, viewer, approval_id, status=422,
                                      problem=f"The note is too long (at most {MAX_NOTE} characters).")
        try:
            approval = await container.approvals.get(None, approval_id)
        except AppError:
            return await show_request(console, viewer, approval_id)
        revision = int(revision_text)
        edits = None
        if verdict == "edit" and revision == approval.revision:
            # Read against the details shown; on an older revision the core refuses (and audits) first.
            edits, errors = read_edits(approval, form, await edit_currency(approval, container.gateway))
            if errors:
                return await show_request(console, viewer, approval_id, status=422, errors=errors,
                                          problem="Some changes could not be read; nothing was recorded.")
        if verdict == "reject" and note is None:
            return await show_request(console, viewer, approval_id, status=422, errors={"note": "Say why."},
                                      problem="A rejection needs a note: the agent and the audit trail both "
                                              "need it. Nothing was recorded.")
        return await _decide(console, viewer, approval_id, Verdict.REJECT if verdict == "reject" else Verdict.APPROVE,
                             note=note, edits=edits or None, revision=revision)

    @router.post("/callbacks/{delivery_id}/redeliver")
    async def redeliver(request: Request, delivery_id: str) -> Response:
        sent = await form_sender(console, request)
        if isinstance(sent, Response):
            return sent
        viewer, _ = sent
        try:
            delivery, _ = await callbacks.get_delivery(container.db, delivery_id)
        except AppError:
            return await show_request(console, viewer, "-", status=404)
        if not viewer.person.may_decide_anything:
            return await show_request(console, viewer, delivery.approval_id, status=403,
                                      problem="Only approvers may redeliver callbacks; viewers may read.")
        try:
            await callbacks.redeliver(container.db, delivery_id)
        except AppError as exc:
            return await show_request(console, viewer, delivery.approval_id, status=exc.status, problem=exc.detail)
        return secure(RedirectResponse(f"/console/requests/{delivery.approval_id}?notice=redelivered",
                                       status_code=303))


async def _decide(console: Console, viewer: Viewer, approval_id: str, verdict: Verdict, *, note: str | None,
                  edits: dict[str, object] | None, revision: int) -> Response:
    actor = Actor("slack_user", viewer.person.user_id, viewer.person.name, via={"surface": "console"})
    try:
        result = await console.container.decisions.decide(approval_id, actor, verdict, note=note, edits=edits,
                                                          revision=revision)
    except NotAnApprover:
        return await show_request(console, viewer, approval_id, status=403,
                                  problem="You may read this request but not decide it; nothing was recorded.")
    except ValidationFailed as exc:
        errors = {str(e["loc"][1]): str(e.get("msg")) for e in exc.errors or []
                  if len(e.get("loc") or []) > 1 and e["loc"][0] == "edits"}
        return await show_request(console, viewer, approval_id, status=422, errors=errors,
                                  problem=f"{exc.detail}. Nothing was recorded.")
    except UpstreamUnavailable as exc:
        return await show_request(console, viewer, approval_id, status=503,
                                  problem=f"{exc.detail}. Try again in a moment; nothing was recorded.")
    data = approval_out(result.approval)
    if result.outcome == "stale":
        return await show_request(console, viewer, approval_id, status=409, problem=(
            f"This request changed since you saw it (you saw revision {revision}; it is now revision "
            f"{data['revision']}), so nothing was recorded. Here is the current one: review it again."))
    if result.outcome == "already_final":
        return await show_request(console, viewer, approval_id, status=409,
                                  problem=f"This request was already {data['status']}; nothing was recorded.")
    if result.outcome == "duplicate_vote":
        return await show_request(console, viewer, approval_id, status=409, problem=(
            "You have already approved this revision; another approver must decide."))
    notice = "vote" if result.outcome == "vote" else data["status"]
    return secure(RedirectResponse(f"/console/requests/{approval_id}?notice={notice}", status_code=303))
