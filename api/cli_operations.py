"""Operators' commands for approvals, for when Slack is not set up or is down.

An operator decides as a named approver (`--as U…`, a Slack user id) through the same port as
every surface, `Decisions.decide` (api/surfaces/port.py): the same Authority, revision and quorum
checks as Slack and the console; the OS user and host are recorded beside the vote. Exit codes as in
`api.cli`, plus 5: that person may not decide this request.
"""

import getpass
import json
import socket
from typing import Annotated, Any

import typer

from api.actions import get_action
from api.approvals.actors import Actor
from api.approvals.authority import NotAnApprover
from api.approvals.decisions import DecisionResult, current_votes
from api.approvals.enums import ApprovalStatus, Verdict
from api.approvals.models import Approval
from api.approvals.schemas import approval_out
from api.cli import approvals_app, container, fail, run
from api.errors import ValidationFailed

NOT_AN_APPROVER = 5


# ---- approvals ----------------------------------------------------------------------------------------

@approvals_app.command("list")
def approvals_list(status: Annotated[ApprovalStatus | None, typer.Option(help="Only approvals in this status.")] = None,
                   limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
                   as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False) -> None:
    """The queue and its history, newest first."""
    async def listing() -> list[Approval]:
        async with container() as c:
            rows, _ = await c.approvals.list(None, status=status.value if status else None, limit=limit)
            return rows

    rows = run(listing())
    if as_json:
        typer.echo(json.dumps({"data": [approval_out(a) for a in rows]}))
        return
    if not rows:
        typer.echo("no approvals")
    for a in rows:
        typer.echo(f"{a.id}  {a.status:<9}  {a.execution_status:<13}  {a.action:<22}  {a.summary[:60]}")


@approvals_app.command("show")
def approvals_show(approval_id: str,
                   as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False) -> None:
    """One approval as the API shows it, with its votes and audit trail."""
    from sqlalchemy import select

    from api.audit.models import AuditEvent

    async def show() -> tuple[Approval, list[AuditEvent]]:
        async with container() as c:
            approval = await c.approvals.get(None, approval_id)
            async with c.db.read() as session:
                trail = (await session.scalars(select(AuditEvent).where(AuditEvent.approval_id == approval_id)
                                               .order_by(AuditEvent.at, AuditEvent.id))).all()
            return approval, list(trail)

    approval, trail = run(show())
    votes = [{"by": {"type": d.actor_type, "id": d.actor_id, "name": d.actor_name}, "verdict": d.verdict,
              "revision": d.revision, "via": d.via, "note": d.note, "edits": d.edits, "at": d.created_at.isoformat()}
             for d in approval.decisions]
    if as_json:
        audit = [{"at": e.at.isoformat(), "event": e.event, "actor": e.actor, "detail": e.detail} for e in trail]
        typer.echo(json.dumps({"approval": approval_out(approval), "votes": votes, "audit": audit}))
        return
    typer.echo(json.dumps(approval_out(approval), indent=2))
    typer.echo(f"\nrevision {approval.revision}; votes:" if votes else f"\nrevision {approval.revision}; no votes")
    for v in votes:
        via = f" via {v['via'].get('osUser')}@{v['via'].get('host')}" if v["via"] else ""
        typer.echo(f"  r{v['revision']}  {v['verdict']:<7}  {v['by']['id']}{via}")
    typer.echo("\naudit trail:")
    for e in trail:
        who = (e.actor or {}).get("name") or (e.actor or {}).get("id") or "-"
        typer.echo(f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.event:<22}  {who}")


def _parse_sets(action: str, sets: list[str], details: dict[str, Any]) -> dict[str, Any]:
    spec = get_action(action)
    if spec is None or not spec.editable:
        fail(f"{action} has no fields a reviewer may change", 2)
    edits: dict[str, Any] = {}
    for item in sets:
        field, sep, text = item.partition("=")
        if not sep or not field:
            fail(f"--set takes FIELD=VALUE, not {item!r}", 2)
        try:
            edits[field] = spec.parse_edit(field, text, details.get("currency"))
        except (ValueError, ValidationFailed) as exc:
            fail(f"--set {field}: {exc}", 2)
    return edits


def _operator(person: str) -> Actor:
    """The approver the operator decides as, with where the command was typed beside it."""
    if not (person[:1] in ("U", "W") and person[1:].isalnum() and person.isupper()):
        fail(f"--as takes a Slack user id (U…), not {person!r}", 2)
    return Actor("operator", person, None, via={"osUser": getpass.getuser(), "host": socket.gethostname()})


def _decide(approval_id: str, person: str, verdict: Verdict, note: str | None, sets: list[str],
            revision: int | None) -> None:
    actor = _operator(person)

    async def decide() -> DecisionResult | NotAnApprover:
        async with container() as c:
            approval = await c.approvals.get(None, approval_id)
            edits = _parse_sets(approval.action, sets, approval.effective_details) if sets else None
            try:
                return await c.decisions.decide(approval_id, actor, verdict, note=note, edits=edits,
                                                revision=revision)
            except NotAnApprover as refused:
                return refused

    result = run(decide())
    if isinstance(result, NotAnApprover):
        fail(f"{result.detail}; nothing was recorded", NOT_AN_APPROVER)
    approval = result.approval
    if result.outcome == "already_final":
        by = (approval.decided_by or {}).get("name") or (approval.decided_by or {}).get("id")
        fail(f"{approval_id} is already {approval.status}" + (f" (by {by})" if by else ""), 4)
    if result.outcome == "stale":
        fail(f"{approval_id} changed since revision {revision}: it is now revision {approval.revision}; "
             "review it again (`approvals show`)", 4)
    if result.outcome == "duplicate_vote":
        fail(f"{person} already voted on revision {approval.revision} of {approval_id}; it needs another approver", 4)
    if result.outcome == "vote":
        reset = " (a new revision: earlier approvals no longer count)" if result.revised else ""
        typer.echo(f"{approval_id}: approval recorded ({len(current_votes(approval))} of "
                   f"{approval.required_approvals}){reset}")
        return
    typer.echo(f"{approval_id}: {approval.status}")
    for field, change in (approval.changes or {}).items():
        typer.echo(f"  {field}: {change['from']} → {change['to']}")


AsPerson = Annotated[str, typer.Option("--as", help="The approver you decide as: their Slack user id (U…).")]
Revision = Annotated[int | None, typer.Option(min=1, help="The revision you reviewed (from `show`); refused if "
                                                            "the request has changed since.")]


@approvals_app.command("approve")
def approvals_approve(
    approval_id: str,
    as_: AsPerson,
    note: Annotated[str | None, typer.Option(help="Why, for the record and the agent.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Change a field first: FIELD=VALUE.")] = None,
    revision: Revision = None,
) -> None:
    """Approve as a named approver, optionally changing fields (e.g. --set amount_cents=17450)."""
    _decide(approval_id, as_, Verdict.APPROVE, note, set_ or [], revision)


@approvals_app.command("reject")
def approvals_reject(approval_id: str, as_: AsPerson,
                     note: Annotated[str, typer.Option(help="Why; the agent receives it.")],
                     revision: Revision = None) -> None:
    """Reject as a named approver, with a note."""
    if not note.strip():
        fail("--note must not be empty", 2)
    _decide(approval_id, as_, Verdict.REJECT, note, [], revision)
