"""The `cheqpoint` command: serve, work, migrate, and operate (CONTRACT §1).

Exit codes: 0 done · 1 failed · 2 bad arguments or configuration · 3 not found · 4 conflict
(already decided, not pending) · 5 that person may not decide this request.
"""

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from api.config import Settings
from api.errors import AppError, Conflict, NotFound, ValidationFailed

T = TypeVar("T")

app = typer.Typer(help="Cheqpoint: human approval in Slack for AI agents that move money on Stripe.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
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
async def container() -> AsyncIterator[Any]:
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


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# ---- serving -----------------------------------------------------------------------------------------

@app.command()
def serve(host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
          port: Annotated[int, typer.Option(envvar="PORT", min=0, max=65535)] = 8000) -> None:
    """The service: intake API, Slack endpoint and the background worker in one process."""
    import uvicorn

    from api.main import create_app
    from api.policy import PolicyError

    _configure_logging()
    try:
        application = create_app(load_settings())
    except PolicyError as exc:
        fail(str(exc), 2)
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command()
def worker() -> None:
    """The background worker alone (for deployments that scale it apart from the API)."""
    from api.main import running

    _configure_logging()

    async def work() -> None:
        async with container() as built, running(built, worker=True):
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        run(work())


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply Alembic migrations."""
    from api.db import Database
    from api.migrate import upgrade

    settings = load_settings()

    async def migrate() -> None:
        db = Database(settings.database_url)
        try:
            await upgrade(db.engine, revision)
        finally:
            await db.close()

    run(migrate())
    typer.echo(f"database at {revision}")


def _register_commands() -> None:
    # Each module adds its commands to the apps above as it is imported.
    from api import cli_audit, cli_callbacks, cli_connections, cli_mcp, cli_operations, cli_policy  # noqa: F401


_register_commands()

__all__ = ["app", "approvals_app", "connections_app", "container", "fail", "run"]


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
