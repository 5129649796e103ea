"""Checks made before serving, so a wrong setting shows up at start and not later as a parked job.

- The database must answer: otherwise one line naming the problem and exit code 1 (no traceback).
- With Slack configured, the bot token must pass `auth.test` and the review channel must be readable
  by the bot and have it as a member; each problem is one warning that says what to fix (the
  missing scope, or the channel to invite the bot to). These only warn: Slack may be briefly
  down, and decisions still work from the CLI.
"""

import asyncio
import contextlib
import logging
import sqlite3

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.config import Settings
from api.db import Database

log = logging.getLogger("cheqpoint.startup")


def _where(database_url: str) -> str:
    """The database's address for a message: never its password."""
    url = make_url(database_url)
    if url.drivername.startswith("sqlite"):
        return f"SQLite at {url.database}"
    return f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def _sqlite_problem(database_url: str) -> str | None:
    # The standard library's driver, synchronously: aiosqlite's thread would outlive a failed check.
    try:
        with contextlib.closing(sqlite3.connect(make_url(database_url).database or ":memory:")) as connection:
            connection.execute("SELECT 1")
    except sqlite3.Error as exc:
        return f"database unreachable ({_where(database_url)}): {type(exc).__name__}: {exc}"
    return None


async def database_problem(settings: Settings, *, within: float = 10.0) -> str | None:
    """None when the database answers `SELECT 1`; otherwise a one-line description of why not."""
    if settings.is_sqlite:
        return _sqlite_problem(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with asyncio.timeout(within), db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return f"database unreachable ({_where(settings.database_url)}): no answer within {within:g} s"
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"database unreachable ({_where(settings.database_url)}): {type(exc).__name__}: {reason}"[:400]
    finally:
        await db.close()
    return None


async def slack_problems(settings: Settings, http: httpx.AsyncClient) -> list[str]:
    """What is wrong with the Slack set-up, as warnings an operator can act on; [] when all is well."""
    if not settings.slack_enabled or settings.slack_bot_token is None:
        return []
    token = settings.slack_bot_token.get_secret_value()
    base = settings.slack_api_url.rstrip("/") + "/"
    headers = {"Authorization": f"Bearer {token}"}

    async def call(method: str, **args: str) -> dict[str, object]:
        response = await http.post(base + method, data=args, headers=headers, timeout=5.0)
        return response.json()

    try:
        auth = await call("auth.test")
        if not auth.get("ok"):
            return [f"Slack: auth.test failed ({auth.get('error')}): check SLACK_BOT_TOKEN"]
        channel = settings.review_channel or ""
        info = await call("conversations.info", channel=channel)
    except (httpx.HTTPError, ValueError) as exc:
        return [f"Slack: could not reach {base} to check the set-up ({type(exc).__name__})"]
    if not info.get("ok"):
        error = info.get("error")
        if error == "missing_scope":
            return [f"Slack: the bot cannot read the review channel {channel}: missing scope "
                    f"{info.get('needed') or 'channels:read/groups:read'}; add it in manifest.yml and reinstall"]
        if error == "channel_not_found":
            return [f"Slack: review channel {channel} not found or private: invite the bot to it "
                    f"(/invite @Cheqpoint) or check CHEQPOINT_REVIEW_CHANNEL"]
        return [f"Slack: conversations.info on review channel {channel} failed ({error})"]
    described = info.get("channel")
    if isinstance(described, dict) and described.get("is_member") is False:
        return [f"Slack: the bot is not a member of review channel {channel}: invite it (/invite @Cheqpoint), "
                f"or its review messages will fail"]
    return []


__all__ = ["database_problem", "slack_problems"]
