"""`cheqpoint jobs`: the outbox as operators see it — what is waiting, what was parked, and sending a
parked job (a Slack post, a Stripe call, a callback) around again once its cause is fixed."""

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli import EXIT_CODES, app, fail, load_settings, run
from api.db import Database, utcnow
from api.outbox.kinds import OPEN_STATUSES, JobStatus
from api.outbox.models import Job
from api.outbox.service import requeue_parked

jobs_app = typer.Typer(help="The outbox: jobs waiting, running or parked, and requeueing parked ones.",
                       no_args_is_help=True, epilog=EXIT_CODES)
app.add_typer(jobs_app, name="jobs")

_ERROR_WIDTH = 80


def job_json(job: Job) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": job.id, "kind": job.kind, "status": job.status, "attempts": job.attempts,
            "maxAttempts": job.max_attempts, "runAt": when(job.run_at), "lockedUntil": when(job.locked_until),
            "lastError": job.last_error, "createdAt": when(job.created_at), "finishedAt": when(job.finished_at),
            "approvalId": job.payload.get("approval_id") if isinstance(job.payload, dict) else None}


async def _with_db(work: Any) -> Any:
    db = Database(load_settings().database_url)
    try:
        return await db.write(work)
    finally:
        await db.close()


@jobs_app.command("list")
def jobs_list(
    parked: Annotated[bool, typer.Option("--parked", help="Only jobs that gave up.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Jobs not done yet (queued, running, parked), oldest due first."""
    statuses = (JobStatus.PARKED,) if parked else OPEN_STATUSES

    async def listing(session: AsyncSession) -> list[Job]:
        query = select(Job).where(Job.status.in_(statuses)).order_by(Job.run_at, Job.id).limit(limit)
        return list((await session.scalars(query)).all())

    jobs = run(_with_db(listing))
    if as_json:
        typer.echo(json.dumps({"data": [job_json(job) for job in jobs]}, indent=2))
        return
    if not jobs:
        typer.echo("no parked jobs" if parked else "no jobs waiting")
        return
    for job in jobs:
        error = (job.last_error or "-").replace("\n", " ")[:_ERROR_WIDTH]
        typer.echo(f"{job.id}  {job.kind:<22}  {job.status:<7}  {job.attempts:>2}/{job.max_attempts:<2}  "
                   f"due {job.run_at:%Y-%m-%d %H:%M:%S}  {error}")


@jobs_app.command("requeue", epilog=EXIT_CODES)
def jobs_requeue(
    job_id: Annotated[str | None, typer.Argument(help="The parked job to run again.", show_default=False)] = None,
    all_parked: Annotated[bool, typer.Option("--all-parked", help="Every parked job.")] = False,
) -> None:
    """Run a parked job again now, with a fresh budget of attempts (its history is kept)."""
    if (job_id is None) == (not all_parked):
        fail("give a job id or --all-parked (not both)", 2)

    async def requeue(session: AsyncSession) -> int:
        return await requeue_parked(session, utcnow(), job_id)

    count = run(_with_db(requeue))
    typer.echo(f"{job_id}: queued to run again" if job_id else f"{count} parked job{'s' if count != 1 else ''} "
                                                                 f"queued to run again")
