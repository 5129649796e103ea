"""`cheqpoint policy check FILE` and `cheqpoint policy replay FILE [--since 30d]` (CONTRACT §1, §6)."""

import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from api.approvals.models import Approval
from api.cli import app, fail, load_settings, run
from api.db import Database, utcnow
from api.policy import Policy, PolicyError, ReplayReport, load_policy
from api.policy.history import replay_stored

policy_app = typer.Typer(help="The policy file: check it, or see what it would have decided.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

PolicyFile = Annotated[Path, typer.Argument(help="The policy YAML file.", show_default=False)]
_SINCE = re.compile(r"^(\d+)([dhm])$")
_UNIT = {"d": "days", "h": "hours", "m": "minutes"}


def parse_since(text: str) -> timedelta:
    match = _SINCE.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        fail(f"--since takes a positive duration such as 30d, 12h or 90m, not {text!r}", 2)
    return timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})


def _load(path: Path) -> Policy:
    """The file loaded exactly as the service loads it; every problem printed, then exit 2."""
    # The loader also logs warnings, for the service's log; here they are this command's own output.
    logging.disable(logging.WARNING)
    try:
        return load_policy(path)
    except PolicyError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        count = len(error.problems)
        typer.echo(f"{path}: {count} problem{'s' if count != 1 else ''}; the service would refuse to start "
                   f"with this file", err=True)
        raise typer.Exit(2) from None
    finally:
        logging.disable(logging.NOTSET)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@policy_app.command("check")
def check(file: PolicyFile) -> None:
    """Validate a policy file; print each problem as FILE:LINE: where: what."""
    policy = _load(file)
    typer.echo(f"{file}: ok, {_plural(len(policy.rules), 'rule')}, version {policy.version[:12]}, "
               f"{_plural(len(policy.warnings), 'warning')}")
    for warning in policy.warnings:
        typer.echo(f"warning: {warning}", err=True)


@policy_app.command("replay")
def replay(file: PolicyFile,
           since: Annotated[str, typer.Option(help="How far back to look: 30d, 12h, 90m.")] = "30d",
           as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False) -> None:
    """What this policy would have decided on the requests stored since then, and what would change.

    A progress bar on stderr counts the requests replayed (when stderr is a terminal)."""
    window = parse_since(since)
    policy = _load(file)
    # Only the database: not the whole service, whose own CHEQPOINT_POLICY_FILE is beside the point here.
    database_url = load_settings().database_url
    report = run(_replay(database_url, policy, window))
    if as_json:
        typer.echo(json.dumps(report_json(report), indent=2))
    else:
        typer.echo(report.render(), nl=False)


def report_json(report: ReplayReport) -> dict[str, Any]:
    return {"policyVersion": report.policy_version, "total": report.total, "perRule": dict(report.per_rule),
            "perDecision": dict(report.per_decision),
            "changes": [{"approvalId": c.approval_id, "action": c.action, "from": {"outcome": c.old_outcome,
                         "rule": c.old_rule}, "to": {"outcome": c.new_outcome, "rule": c.new_rule}}
                        for c in report.changes],
            "errors": [{"approvalId": approval_id, "error": error} for approval_id, error in report.errors]}


async def _replay(database_url: str, policy: Policy, window: timedelta) -> ReplayReport:
    db = Database(database_url)
    since = utcnow() - window
    try:
        async with db.read() as session:
            total = await session.scalar(select(func.count()).select_from(Approval)
                                         .where(Approval.created_at >= since)) or 0
            console = Console(stderr=True)
            with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console, transient=True, disable=not console.is_terminal) as bar:
                task = bar.add_task("replay", total=total)
                return await replay_stored(session, policy, since=since,
                                           progress=lambda: bar.advance(task))
    except SQLAlchemyError as error:
        fail(f"cannot read the stored requests ({type(error).__name__}: {getattr(error, 'orig', error)}); "
             f"is the database migrated (`cheqpoint db upgrade`)?", 1)
    finally:
        await db.close()
