"""The policy page: the policy the service runs (file, version, rules), whether its file still
checks, and a replay of it over a recent period with the decisions that would differ."""

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.console.context import Console
from api.console.gate import reader
from api.console.pages import page
from api.policy import Policy, PolicyError, load_policy
from api.policy.history import replay_stored

MAX_REPLAY_DAYS = 90


def register(router: APIRouter, console: Console) -> None:
    container = console.container

    @router.get("/policy")
    async def policy_page(request: Request, replay_days: str | None = None) -> Response:
        viewer = await reader(console, request)
        if isinstance(viewer, Response):
            return viewer
        policy = container.authority.policy()
        check, on_disk = _check(container.settings.policy_file, container.settings.approvers)
        # Replayed: the file as it is now (what a restart would run), else the running policy.
        replayed = on_disk or policy
        report, problem, status = None, None, 200
        if replay_days is not None:
            if not replay_days.isdigit() or not 1 <= int(replay_days) <= MAX_REPLAY_DAYS:
                problem, status = f"Replay takes a number of days from 1 to {MAX_REPLAY_DAYS}.", 422
            else:
                since = container.clock() - timedelta(days=int(replay_days))
                async with container.db.read() as session:
                    report = await replay_stored(session, replayed, since=since)
        return page("policy.html", {"me": viewer.person, "csrf": viewer.session.csrf, "policy": policy,
                                    "check": check, "on_disk": on_disk, "report": report, "problem": problem,
                                    "replay_days": replay_days or "30", "max_days": MAX_REPLAY_DAYS}, status=status)


def _check(path: Path | None, approvers: Sequence[str]) -> tuple[list[str] | None, Policy | None]:
    """The file's problems if it were loaded now (it may have changed since the service started) and
    the policy it holds: (None, None) for the built-in policy, ([], policy) when it checks."""
    if path is None:
        return None, None
    logging.disable(logging.WARNING)  # the loader's warnings are for the service's start, not each page view
    try:
        return [], load_policy(path, approvers)
    except PolicyError as error:
        return list(error.problems), None
    finally:
        logging.disable(logging.NOTSET)
