"""A fake of Slack's Web API, served on a real port, that answers the way Slack does.

It checks the bot token, each method's required arguments (from Slack's own method specs in
`../shared/vendor/slack/methods/` when present), Block Kit limits, channels and message
timestamps, keeps messages (with their metadata) and views so updates change them, enforces
Slack's rate limits (429 with Retry-After), records every call, and fails on demand (rate limits
with Retry-After, 5xx, any Slack error code, an answer lost after the call took effect).

    fake = FakeSlack(token="xoxb-test")
    fake.add_usergroup("S0FINANCE", ["U1", "U2"])
    with fake.serving() as base_url:             # "http://127.0.0.1:PORT/api/"
        client = AsyncWebClient(token="xoxb-test", base_url=base_url)
        ...
    fake.calls_to("chat.postMessage")            # [args, ...]
"""

import asyncio
import contextlib
import itertools
import json
import os
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import serve
from tests.fakes.slack.limits import RateLimiter
from tests.fakes.slack.methods import SlackMethods
from tests.fakes.slack.specs import _JSON_ARGS, METHODS_DIR, Call, MethodSpec, SlackError, load_method_specs


@dataclass(frozen=True)
class _Failure:
    error: str
    status: int
    retry_after: int | None


class FakeSlack(SlackMethods):
    REVIEW_CHANNEL = "C0REVIEW"
    ALERTS_CHANNEL = "C0ALERTS"

    def __init__(
        self,
        token: str = "xoxb-test",
        *,
        channels: Iterable[str] = (REVIEW_CHANNEL, ALERTS_CHANNEL),
        bot_user_id: str = "U0BOT",
        team_id: str = "T0TEAM",
        methods_dir: Path = METHODS_DIR,
        limits: bool = False,
    ):
        self.token, self.bot_user_id, self.team_id = token, bot_user_id, team_id
        self.specs = load_method_specs(methods_dir)
        self.calls: list[Call] = []
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # channel → ts → message
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}  # view id → view
        self.home_views: dict[str, dict[str, Any]] = {}  # user id → published home view
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._used_triggers: set[str] = set()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        # Slack's rate limits (429 with Retry-After) when `limits=True`: tests about them ask for them.
        # CHEQPOINT_TEST_SLACK_LIMITS=1 turns them on for every fake, to run any test under Slack's real
        # limits (not the default: tests that post to the fake directly exceed chat.postMessage's burst).
        limits = limits or bool(os.environ.get("CHEQPOINT_TEST_SLACK_LIMITS"))
        self.limiter: RateLimiter | None = RateLimiter() if limits else None
        self._answer_lost: dict[str, int] = defaultdict(int)
        self._answer_delays: dict[str, deque[float]] = defaultdict(deque)
        for channel in channels:
            self.add_channel(channel)
        self.app = Starlette(routes=[Route("/api/{method}", self._endpoint, methods=["GET", "POST"])])

    # -- set-up --------------------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str | None = None, *, member: bool = True) -> None:
        """`member=False`: the bot is not in it, so posting answers `not_in_channel`."""
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name or channel_id.lower(),
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_member": member,
        }

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
    ) -> None:
        name = name or user_id.lower()
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real_name or name,
            "deleted": deleted,
            "is_bot": is_bot,
            "tz": "UTC",
            "profile": {"real_name": real_name or name, "display_name": name},
        }

    def add_usergroup(self, usergroup_id: str, users: Iterable[str]) -> None:
        self.usergroups[usergroup_id] = list(users)

    def fail_next(
        self,
        method: str,
        error: str | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls to `method` fail: a Slack error code, an HTTP status, or both.

        `error="ratelimited"` answers 429 with `Retry-After` (1 s unless given), as Slack does.
        """
        if error == "ratelimited":
            status, retry_after = status or 429, retry_after if retry_after is not None else 1
        failure = _Failure(error or "internal_error", status or (500 if error is None else 200), retry_after)
        with self._lock:
            self._failures[method].extend([failure] * times)

    def lose_next_answer(self, method: str, *, times: int = 1) -> None:
        """The next `times` calls to `method` take effect, but their answer is a 500: as when the
        caller dies, or its connection drops, between Slack's answer and the caller reading it."""
        with self._lock:
            self._answer_lost[method] += times

    def delay_next_answer(self, method: str, seconds: float) -> None:
        """The next call to `method` takes effect at once but is answered `seconds` later: time for a
        test to kill the caller between Slack's work and the caller hearing of it."""
        with self._lock:
            self._answer_delays[method].append(seconds)

    # -- inspection ----------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [call.args for call in list(self.calls) if call.method == method]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        return self.messages[channel][ts]

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        return list(self.messages[channel].values())

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        """Serve on a free port; yields the base URL for slack_sdk (`…/api/`)."""
        with serve(self.app) as url:
            yield f"{url}/api/"

    # -- HTTP ----------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        spec = self.specs.get(method)
        if spec is None:
            return SlackError("unknown_method").response()
        try:
            args, token = await self._read_args(request, spec)
        except SlackError as error:
            return error.response()
        response = self._answer(method, spec, args, token)
        with self._lock:
            delay = self._answer_delays[method].popleft() if self._answer_delays[method] else 0.0
        if delay:
            await asyncio.sleep(delay)
        return response

    def _answer(self, method: str, spec: MethodSpec, args: dict[str, Any], token: str | None) -> JSONResponse:
        with self._lock:
            self.calls.append(Call(method, args))
            failure = self._failures[method].popleft() if self._failures[method] else None
            try:
                if failure:
                    raise _as_error(failure)
                self._check_auth(token)
                self._check_required(spec, args)
                self._check_rate(method, args)
                answer = getattr(self, "_" + method.replace(".", "_"))(args)
                if self._answer_lost[method] > 0:
                    self._answer_lost[method] -= 1
                    raise SlackError("internal_error", status=500)
                return JSONResponse({"ok": True, **answer})
            except SlackError as error:
                return error.response()

    def _check_rate(self, method: str, args: dict[str, Any]) -> None:
        channel = args.get("channel") if isinstance(args.get("channel"), str) else None
        wait = self.limiter.retry_after(method, channel) if self.limiter is not None else None
        if wait is not None:
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(wait)})

    @property
    def rate_limited(self) -> int:
        """How many calls were answered 429 by the enforced limits (failures asked for not counted)."""
        return self.limiter.refused if self.limiter is not None else 0

    async def _read_args(self, request: Request, spec: MethodSpec) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.query_params)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            if spec.json_input:
                args.update(body)
        elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            args.update((await request.form()).items())
        for key in _JSON_ARGS:
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    raise SlackError(f"invalid_{key}_format" if key == "blocks" else "invalid_arguments") from None
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        form_token = args.pop("token", None)
        return args, token or form_token

    def _check_auth(self, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        if token != self.token:
            raise SlackError("invalid_auth")

    def _check_required(self, spec: MethodSpec, args: dict[str, Any]) -> None:
        missing = [name for name in spec.required if args.get(name) in (None, "")]
        if missing:
            raise SlackError(
                "missing_argument", messages=[f"[ERROR] missing required field: {name}" for name in missing]
            )


def _as_error(failure: _Failure) -> SlackError:
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    return SlackError(failure.error, status=failure.status, headers=headers)
