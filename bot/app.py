"""The Bolt app, built by a factory from the container: no global app, no import-time tokens."""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from api.config import Settings
from bot.approvers import ApproverDirectory
from bot.budget import SlackBudget
from bot.connections import SlackConnections
from bot.failures import retry_after
from bot.handlers import actions, bulk, claims, home, views
from bot.handlers.common import Deps

if TYPE_CHECKING:
    from api.main import Container

log = logging.getLogger(__name__)

CLIENT_TIMEOUT = 10  # seconds a Web API call may take


class BudgetedWebClient(AsyncWebClient):
    """A Web API client whose every call draws from Slack's budget first (see bot.budget).

    `defer`: the outbox's client. A far slot or a 429 defers the job (not a failed attempt) instead
    of holding the worker; the listeners' client waits a little and lets Slack's answer decide.
    """

    def __init__(self, *args: Any, budget: SlackBudget | None, defer: bool,
                 connections: SlackConnections | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget, self.defer, self.connections = budget, defer, connections

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:  # type: ignore[override]
        if self.connections is not None:  # slack_sdk uses it and leaves it open
            self.session = self.connections.session()
        if self.budget is None:
            return await super().api_call(api_method, **kwargs)
        channel = _channel_of(kwargs)
        await self.budget.acquire(api_method, channel, defer=self.defer)
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            if exc.response.status_code == 429 or exc.response.get("error") == "ratelimited":
                await self.budget.refused(api_method, channel, retry_after(exc.response.headers), defer=self.defer)
            raise


def _channel_of(kwargs: dict[str, Any]) -> str | None:
    for part in ("json", "data", "params"):
        args = kwargs.get(part)
        if isinstance(args, dict) and isinstance(args.get("channel"), str):
            return args["channel"]
    return None


def web_client(settings: Settings, *, interactive: bool, budget: SlackBudget | None = None,
               connections: SlackConnections | None = None) -> AsyncWebClient:
    """Listeners retry rate limits and 5xx in place (a person is waiting on the answer); the
    outbox's jobs do not, so a Retry-After of a minute frees the worker instead of holding it."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    handlers: list[Any] = [AsyncConnectionErrorRetryHandler(max_retry_count=1)]
    if interactive:
        handlers += [AsyncRateLimitErrorRetryHandler(max_retry_count=2),
                     AsyncServerErrorRetryHandler(max_retry_count=2)]
    return BudgetedWebClient(token=token, base_url=settings.slack_api_url, timeout=CLIENT_TIMEOUT,
                             retry_handlers=handlers, budget=budget, defer=not interactive, connections=connections)


_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,80}", re.ASCII)


def listener_name(body: Any) -> str:
    """`block_actions approve`, `view_submission edit_modal`: which listener, in safe words."""
    if not isinstance(body, dict):
        return "an unreadable payload"
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    view = body.get("view") if isinstance(body.get("view"), dict) else {}
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    parts = [body.get("type"), first.get("action_id") or view.get("callback_id") or event.get("type")]
    return " ".join(part for part in parts if isinstance(part, str) and _NAME.fullmatch(part)) or "a payload"


class Inflight:
    """Listener work still running after its ack: awaited at shutdown so a decision being recorded
    is not cut off, and by tests, which must see a click's effects before asserting on them.
    (Event listeners start only after their automatic ack, so a caller that needs one finished
    waits for its effect instead.)"""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def track(self, listener: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @wraps(listener)  # Bolt passes arguments by the listener's parameter names
        async def tracked(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            try:
                return await listener(*args, **kwargs)
            finally:
                self._tasks.discard(task)  # type: ignore[arg-type]

        return tracked

    async def idle(self) -> None:
        current = asyncio.current_task()
        while others := [t for t in self._tasks if t is not current and not t.done()]:
            await asyncio.wait(others)


class _TrackingApp:
    """Registers listeners on the Bolt app with each one tracked."""

    def __init__(self, app: AsyncApp, inflight: Inflight) -> None:
        self.app, self.inflight = app, inflight

    def _wrap(self, register: Callable[..., Any]) -> Callable[..., Any]:
        def decorator(listener: Callable[..., Awaitable[Any]]) -> Any:
            return register(self.inflight.track(listener))

        return decorator

    def action(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._wrap(self.app.action(*args, **kwargs))

    def view(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._wrap(self.app.view(*args, **kwargs))

    def event(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._wrap(self.app.event(*args, **kwargs))


def build_bolt_app(container: "Container", *, client: AsyncWebClient | None = None,
                   directory: ApproverDirectory | None = None, inflight: Inflight | None = None) -> AsyncApp:
    settings: Settings = container.settings
    client = client or web_client(settings, interactive=True)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app = AsyncApp(signing_secret=secret, client=client, name="cheqpoint")  # the token is the client's
    # Bolt logs the whole body of a request whose signature fails, at INFO. `bot.inbound` refuses
    # those before Bolt sees them; this keeps the edge (a timestamp that ages past five minutes
    # between the two checks) from logging one. Bolt sets the level when the app is built.
    logging.getLogger("slack_bolt.RequestVerification").setLevel(logging.WARNING)
    deps = Deps(container, directory or ApproverDirectory(client, container.clock))
    registrar = _TrackingApp(app, inflight or Inflight())
    actions.register(registrar, deps)
    views.register(registrar, deps)
    home.register(registrar, deps)
    bulk.register(registrar, deps)
    claims.register(registrar, deps)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # One place for listener failures. A decision that was recorded stays recorded; the
        # reviewer may see Slack's generic warning, and the message is corrected by the outbox.
        # One short line of our own words: what failed and how, never the payload's text (a user
        # id or a typed value could forge a line); the traceback only for debugging.
        log.error("Slack listener failed: %s on %s", type(error).__name__, listener_name(body))
        log.debug("Slack listener failure", exc_info=error)

    return app
