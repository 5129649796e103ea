"""Operators' commands for approvals, for when Slack is not set up or is down."""

import json
from typing import Annotated, Any

import typer

from api.actions import get_action
from api.approvals.actors import Actor
from api.approvals.schemas import approval_out
from api.cli import approvals_app, container, fail, run
from api.errors import ValidationFailed


def _operator() -> Actor:
    import getpass

    return Actor("operator", getpass.getuser(), getpass.getuser())


# ---- approvals ----------------------------------------------------------------------------------------

@approvals_app.command("list")
def approvals_list(status: Annotated[str | None, typer.Option(help="pending, approved, rejected, …")] = None,
                   limit: Annotated[int, typer.Option(min=1, max=500)] = 50) -> None:
    """The queue and its history, newest first."""
    if status and status not in ("pending", "approved", "rejected", "expired", "cancelled"):
        fail(f"unknown status {status!r}", 2)

    async def listing() -> list[Any]:
        async with container() as c:
            rows, _ = await c.approvals.list(None, status=status, limit=limit)
            return rows

    for a in run(listing()):
        typer.echo(f"{a.id}  {a.status:<9}  {a.execution_status:<13}  {a.action:<22}  {a.summary[:60]}")


@approvals_app.command("show")
def approvals_show(approval_id: str) -> None:
    """One approval as the API shows it, with its audit trail."""
    from sqlalchemy import select

    from api.audit.models import AuditEvent

    async def show() -> tuple[dict[str, Any], list[Any]]:
        async with container() as c:
            approval = await c.approvals.get(None, approval_id)
            async with c.db.read() as session:
                trail = (await session.scalars(select(AuditEvent).where(AuditEvent.approval_id == approval_id)
                                               .order_by(AuditEvent.id))).all()
            return approval_out(approval), list(trail)

    body, trail = run(show())
    typer.echo(json.dumps(body, indent=2))
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


def _decide(approval_id: str, verdict: str, note: str | None, sets: list[str]) -> None:
    async def decide() -> Any:
        async with container() as c:
            approval = await c.approvals.get(None, approval_id)
            edits = _parse_sets(approval.action, sets, approval.effective_details) if sets else None
            return await c.decisions.decide(approval_id, _operator(), verdict, note=note, edits=edits)

    result = run(decide())
    approval = result.approval
    if result.outcome == "already_final":
        by = (approval.decided_by or {}).get("name") or (approval.decided_by or {}).get("id")
        fail(f"{approval_id} is already {approval.status}" + (f" (by {by})" if by else ""), 4)
    if result.outcome == "duplicate_vote":
        fail(f"you already voted on {approval_id}; it needs another approver", 4)
    if result.outcome == "vote":
        votes = sum(1 for d in approval.decisions if d.verdict == "approve")
        typer.echo(f"{approval_id}: approval recorded ({votes} of {approval.required_approvals})")
        return
    typer.echo(f"{approval_id}: {approval.status}")
    for field, change in (approval.changes or {}).items():
        typer.echo(f"  {field}: {change['from']} → {change['to']}")


@approvals_app.command("approve")
def approvals_approve(
    approval_id: str,
    note: Annotated[str | None, typer.Option(help="Why, for the record and the agent.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Change a field first: FIELD=VALUE.")] = None,
) -> None:
    """Approve as an operator, optionally changing fields (e.g. --set amount_cents=17450)."""
    _decide(approval_id, "approve", note, set_ or [])


@approvals_app.command("reject")
def approvals_reject(approval_id: str,
                     note: Annotated[str, typer.Option(help="Why; the agent receives it.")]) -> None:
    """Reject as an operator, with a note."""
    if not note.strip():
        fail("--note must not be empty", 2)
    _decide(approval_id, "reject", note, [])
