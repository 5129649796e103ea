"""The pages that read: the queue, one request's page, history and its CSV export, the stylesheet."""

import csv
import io
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.approvals.decisions import current_votes
from api.approvals.edit_currency import edit_currency
from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.approvals.schemas import approval_out
from api.console import queries
from api.console.context import Console, Viewer
from api.console.edits import form_fields
from api.console.gate import reader
from api.console.pages import HERE, SECURITY_HEADERS, age, page
from api.console.queries import FilterError, HistoryFilter

# Only these fixed messages can be shown after a redirect; nothing from the query string is echoed.
NOTICES = {
    "approved": "Approved. The agent has been told and the Slack message updated.",
    "rejected": "Rejected. The agent has been told and the Slack message updated.",
    "vote": "Your approval is recorded; more approvals are needed before it runs.",
    "redelivered": "The callback will be delivered again.",
}
APPROVAL_ID = re.compile(r"apr_[A-Za-z0-9_]{1,60}")
CSV_COLUMNS = ("approvalId", "createdAt", "status", "action", "connection", "amountMinor", "currency", "decidedBy",
               "decidedAt", "decisionNote", "execution", "stripeObjectId", "summary")


def register(router: APIRouter, console: Console) -> None:
    container = console.container

    @router.get("")
    async def queue(request: Request, mine: bool = False) -> Response:
        viewer = await reader(console, request)
        if isinstance(viewer, Response):
            return viewer
        rows = await queries.pending(container.db)
        if mine:
            rows = [row for row in rows if await _awaits(console, viewer, row)]
        names = await queries.connection_names(container.db)
        now = container.clock()
        items = [_item(row, names, now) for row in rows]
        return page("queue.html", _base(viewer, mine=mine, items=items))

    @router.get("/requests/{approval_id}")
    async def request_page(request: Request, approval_id: str, notice: str | None = None) -> Response:
        viewer = await reader(console, request)
        if isinstance(viewer, Response):
            return viewer
        return await show_request(console, viewer, approval_id, notice=NOTICES.get(notice or ""))

    @router.get("/history")
    async def history(request: Request) -> Response:
        viewer = await reader(console, request)
        if isinstance(viewer, Response):
            return viewer
        try:
            wanted = HistoryFilter.parse(dict(request.query_params))
        except FilterError as exc:
            return page("history.html", _base(viewer, wanted=HistoryFilter(), items=[], error=str(exc),
                                              statuses=queries.STATUSES, csv=None), status=422)
        rows = await queries.history(container.db, wanted)
        names = await queries.connection_names(container.db)
        now = container.clock()
        return page("history.html", _base(viewer, wanted=wanted, items=[_item(r, names, now) for r in rows],
                                          error=None, statuses=queries.STATUSES,
                                          csv="/console/history.csv?" + urlencode(wanted.as_query())))

    @router.get("/history.csv")
    async def history_csv(request: Request) -> Response:
        viewer = await reader(console, request)
        if isinstance(viewer, Response):
            return viewer
        try:
            wanted = HistoryFilter.parse(dict(request.query_params))
        except FilterError as exc:
            return Response(str(exc), status_code=422, media_type="text/plain", headers=SECURITY_HEADERS)
        rows = await queries.history(container.db, wanted, limit=queries.HISTORY_SCAN)
        names = await queries.connection_names(container.db)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([_cell(v) for v in _csv_row(row, names)])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={**SECURITY_HEADERS,
                                 "Content-Disposition": 'attachment; filename="cheqpoint-history.csv"'})

    @router.get("/static/console.css")
    async def stylesheet() -> Response:
        return Response((HERE / "static" / "console.css").read_text(), media_type="text/css",
                        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


async def show_request(console: Console, viewer: Viewer, approval_id: str, *, notice: str | None = None,
                       problem: str | None = None, errors: dict[str, str] | None = None,
                       status: int = 200) -> Response:
    """One request's page; also re-shown, with the problem, when a decision was refused."""
    container = console.container
    story = await queries.story(container.db, approval_id) if APPROVAL_ID.fullmatch(approval_id) else None
    if story is None:
        return page("refused.html", {"me": viewer.person, "csrf": viewer.session.csrf, "name": None,
                                     "message": "There is no such request."}, status=404)
    approval = story.approval
    may_decide = approval.status == ApprovalStatus.PENDING and \
        (await container.authority.may_decide(viewer.person.user_id, approval)).allowed
    currency = await edit_currency(approval, container.gateway) if may_decide else None
    return page("request.html", _base(
        viewer, story=story, data=approval_out(approval), item=_item(approval, {}, container.clock()),
        review_url=await container.review_links.url_for(approval.id),  # its Slack message, once posted
        may_decide=may_decide, fields=form_fields(approval, currency) if currency else [], currency=currency,
        votes=len(current_votes(approval)), notice=notice, problem=problem, errors=errors or {},
        may_redeliver=viewer.person.may_decide_anything), status=status)


async def _awaits(console: Console, viewer: Viewer, approval: Approval) -> bool:
    """"Mine": pending requests this person may decide and has not yet voted on in this revision."""
    if any(d.actor_id == viewer.person.user_id and d.revision == approval.revision for d in approval.decisions):
        return False
    return (await console.container.authority.may_decide(viewer.person.user_id, approval)).allowed


def _base(viewer: Viewer, **context: Any) -> dict[str, Any]:
    return {"me": viewer.person, "csrf": viewer.session.csrf, **context}


def _item(approval: Approval, names: dict[str, str], now: datetime) -> dict[str, Any]:
    amount, currency = queries.amount_of(approval)
    facts = approval.stripe_facts or {}
    return {"row": approval, "amount": amount, "currency": currency, "age": age(approval.created_at, now),
            "connection": names.get(approval.connection_id, approval.connection_id),
            "facts": facts.get("facts") or {}, "warnings": facts.get("warnings") or []}


def _csv_row(row: Approval, names: dict[str, str]) -> list[Any]:
    amount, currency = queries.amount_of(row)
    by = row.decided_by or {}
    return [row.id, row.created_at.isoformat(), row.status, row.action, names.get(row.connection_id, row.connection_id),
            amount, currency, by.get("name") or by.get("id"), row.decided_at.isoformat() if row.decided_at else None,
            row.decision_note, row.execution_status, row.stripe_object_id, row.summary]


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: agent text starting with =, +, - or @ is a formula there."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
