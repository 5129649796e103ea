"""What a failed Slack Web API call means for the outbox job that made it.

Passing trouble (5xx, timeouts, a dropped connection) is retried by the outbox with back-off; the
job holds no worker slot while it waits. Rate limits rarely get this far: the client's budget
(bot.budget) defers the job to its slot, uncounted, before and after a 429; a client without one
retries after Slack's Retry-After. Trouble only
a person can fix (the bot is not in the channel, the channel is gone, the token is bad) parks the
job at once: retrying would only repeat the same answer.
"""

import asyncio
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from api.outbox.registry import Park, Retry

# Any other error Slack names (channel_not_found, not_in_channel, is_archived, invalid_blocks, …)
# will be the same on the next attempt: a person must fix it, and the request stays decidable from
# the CLI. Token errors are told apart because no Slack call at all can succeed until they are fixed.
TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                          "missing_scope", "no_permission", "team_access_not_granted"})
# Slack's own answers for "try again", with a 200 status.
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                              "ratelimited"})

DEFAULT_RATE_LIMIT_WAIT = 30.0


@dataclass(frozen=True)
class SlackFailure:
    """A call that failed, classified."""

    error: str
    retry: bool
    delay: float | None = None

    @property
    def needs_person(self) -> bool:
        return not self.retry

    @property
    def token_problem(self) -> bool:
        return self.error in TOKEN_ERRORS

    def outcome(self, what: str) -> Exception:
        if self.retry:
            return Retry(f"Slack {what}: {self.error}", delay=self.delay)
        return Park(f"Slack {what}: {self.error}")


def classify(exc: BaseException) -> SlackFailure | None:
    """None for an exception that is not Slack's (a bug: let the worker record it as such)."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = str(response.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 429 or error == "ratelimited":
            return SlackFailure(error, True, retry_after(response.headers))
        if response.status_code >= 500 or error in TRANSIENT_ERRORS:
            return SlackFailure(error, True)
        return SlackFailure(error, False)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | ConnectionError | SlackClientError):
        return SlackFailure(f"{type(exc).__name__}: {exc}".rstrip(": "), True)
    return None


def retry_after(headers: dict | None) -> float:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(float(value), 1.0)
            except (TypeError, ValueError):
                break
    return DEFAULT_RATE_LIMIT_WAIT
