"""The `cheqpoint` command: serve, work, migrate, and operate (CONTRACT §1).

Exit codes: 0 done · 1 failed (the database unreachable, …) · 2 bad arguments or configuration ·
3 not found · 4 conflict (already decided, not pending) · 5 that person may not decide this request.
"""

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from api.config import Settings
from api.errors import AppError, Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from api.main import Container

T = TypeVar("T")

EXIT_CODES = ("Exit codes: 0 done · 1 failed (for instance the database is unreachable) · 2 bad arguments or "
              "configuration · 3 not found · 4 conflict (already decided, not pending) · 5 not allowed.")

app = typer.Typer(help="Cheqpoint: human approval in Slack for AI agents that move money on Stripe.\n\n" + EXIT_CODES,
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
connections_app = typer.Typer(help="Connections: one per agent integration.", no_args_is_help=True)
approvals_app = typer.Typer(help="The approval queue and its history.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(connections_app, name="connections")
app.add_typer(approvals_app, name="approvals")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        fail(f"configuration is invalid: {problems}", 2)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one command's work, turning domain errors into a message and an exit code."""
    try:
        return asyncio.run(coroutine)
    except NotFound as exc:
        fail(exc.detail, 3)
    except Conflict as exc:
        fail(exc.detail, 4)
    except ValidationFailed as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors or [])
        fail(f"{exc.detail}{': ' + fields if fields else ''}", 2)
    except AppError as exc:
        fail(exc.detail)


@contextlib.asynccontextmanager
async def container() -> AsyncIterator["Container"]:
    from api.main import build_container
    from api.policy import PolicyError

    try:
        built = build_container(load_settings())
    except PolicyError as exc:
        fail(str(exc), 2)
    try:
        yield built
    finally:
        await built.close()


def _version(value: bool) -> None:
    if value:
        try:
            installed = version("cheqpoint-server")
        except PackageNotFoundError:  # run from a source tree that was never installed
            installed = "unknown (not installed)"
        typer.echo(f"cheqpoint {installed}")
        raise typer.Exit()


@app.callback()
def main_options(
    _version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                           help="Print the version and exit.")] = False,
) -> None:
    """Cheqpoint: human approval in Slack for AI agents that move money on Stripe."""


async def _database_problem(settings: Settings) -> str | None:
    from api.startup import database_problem

    return await database_problem(settings)


def _start(settings: Settings) -> None:
    """Logging as configured, then the database must answer: one clear line and exit 1 otherwise."""
    from api.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    problem = asyncio.run(_database_problem(settings))
    if problem is not None:
        fail(problem, 1)


# ---- serving -----------------------------------------------------------------------------------------

@app.command(epilog=EXIT_CODES)
def serve(host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
          port: Annotated[int, typer.Option(envvar="PORT", min=0, max=65535)] = 8000,
          with_worker: Annotated[bool, typer.Option("--worker/--no-worker", help=(
              "Run the background worker in this process too (--no-worker when `cheqpoint worker` "
              "runs apart)."))] = True) -> None:
    """The service: intake API, Slack endpoint and the background worker in one process.

    SIGTERM stops it gracefully: held requests are answered with their current state within
    CHEQPOINT_SHUTDOWN_GRACE_SECONDS, claimed jobs go back to the queue, and it exits 0.
    """
    from api.main import create_app
    from api.policy import PolicyError
    from api.serving import Server, server_config

    settings = load_settings()
    _start(settings)
    _warn_about_slack(settings)
    try:
        application = create_app(settings, run_worker=with_worker)
    except PolicyError as exc:
        fail(str(exc), 2)
    server = Server(server_config(application, settings, host=host, port=port),
                    on_stop=application.state.container.waiters.release_all)
    server.run()
    if not server.started:
        fail(f"could not serve on {host}:{port}", 1)


def _warn_about_slack(settings: Settings) -> None:
    import httpx

    from api.startup import slack_problems

    async def check() -> list[str]:
        async with httpx.AsyncClient() as http:
            return await slack_problems(settings, http)

    for problem in asyncio.run(check()):
        logging.getLogger("cheqpoint.startup").warning(problem)


@app.command(epilog=EXIT_CODES)
def worker() -> None:
    """The background worker alone (for deployments that scale it apart from the API).

    SIGTERM or SIGINT: the jobs it has claimed go back to the queue at once, and it exits 0.
    """
    from api.main import running

    settings = load_settings()
    _start(settings)

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with container() as built, running(built, worker=True):
            logging.getLogger("cheqpoint").info("worker started")
            await stop.wait()
            logging.getLogger("cheqpoint").info("worker stopping: returning claimed jobs")

    run(work())


# Any constant shared by every `db upgrade`: the key of the PostgreSQL advisory lock they take.
MIGRATION_LOCK_KEY = 0x63686571  # "cheq"


@db_app.command("upgrade", epilog=EXIT_CODES)
def db_upgrade(revision: str = "head") -> None:
    """Apply Alembic migrations. Safe when several replicas run it at once: on PostgreSQL each waits
    for an advisory lock, so one migrates and the others find the database already at head."""
    from sqlalchemy import text

    from api.db import Database
    from api.migrate import upgrade

    settings = load_settings()
    problem = asyncio.run(_database_problem(settings))
    if problem is not None:
        fail(problem, 1)

    async def migrate() -> None:
        db = Database(settings.database_url)
        try:
            if settings.is_sqlite:  # SQLite's own write lock serialises migrations
                await upgrade(db.engine, revision)
                return
            async with db.engine.connect() as lock:
                await lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                try:
                    await upgrade(db.engine, revision)
                finally:
                    await lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        finally:
            await db.close()

    run(migrate())
    typer.echo(f"database at {revision}")


@app.command(epilog=EXIT_CODES)
def cluster(host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
            port: Annotated[int, typer.Option(envvar="PORT", min=1, max=65535)] = 8000,
            replicas: Annotated[int, typer.Option(min=1, max=16)] = 2) -> None:
    """compose.yaml's topology without Docker: migrations, REPLICAS API processes behind one port, and a
    worker, on the PostgreSQL database of DATABASE_URL. SIGTERM stops them all gracefully."""
    from api.cluster import Cluster

    settings = load_settings()
    if settings.is_sqlite:
        fail("cluster needs PostgreSQL (DATABASE_URL=postgresql+asyncpg://…): SQLite has one writer per file", 2)
    db_upgrade("head")
    raise typer.Exit(asyncio.run(Cluster(host, port, replicas).run()))


def _register_commands() -> None:
    # Each module adds its commands to the apps above as it is imported.
    from api import (  # noqa: F401
        cli_audit,
        cli_callbacks,
        cli_connections,
        cli_jobs,
        cli_mcp,
        cli_operations,
        cli_policy,
    )


_register_commands()

__all__ = ["app", "approvals_app", "connections_app", "container", "fail", "run"]


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m api.cli`
    # The commands of the other modules register on `api.cli.app`, which this `__main__` module is not.
    from api.cli import main as registered_main

    sys.exit(registered_main())
