"""A fake of Slack's Web API, served on a real port, that answers the way Slack does.

It checks the bot token, each method's required arguments (from Slack's own method specs in
`../shared/vendor/slack/methods/` when present), Block Kit limits, channels and message
timestamps, keeps messages and views so updates change them, records every call, and fails on
demand (rate limits with Retry-After, 5xx, any Slack error code).

    fake = FakeSlack(token="xoxb-test")
    fake.add_usergroup("S0FINANCE", ["U1", "U2"])
    with fake.serving() as base_url:             # "http://127.0.0.1:PORT/api/"
        client = AsyncWebClient(token="xoxb-test", base_url=base_url)
        ...
    fake.calls_to("chat.postMessage")            # [args, ...]
"""

import contextlib
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import serve

METHODS_DIR = Path(__file__).resolve().parents[3] / "shared" / "vendor" / "slack" / "methods"

# Used when the vendored specs are absent, and for methods they do not cover.
_BUILTIN_REQUIRED: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("channel",),
    "chat.update": ("channel", "ts"),
    "chat.postEphemeral": ("channel", "user"),
    "chat.getPermalink": ("channel", "message_ts"),
    "views.open": ("view",),
    "views.update": ("view",),
    "views.push": ("view",),
    "views.publish": ("user_id", "view"),
    "usergroups.users.list": ("usergroup",),
    "users.info": ("user",),
    "conversations.info": ("channel",),
}
# Slack reads JSON bodies only for these; elsewhere a JSON body's arguments are not seen.
_BUILTIN_JSON = {"auth.test", "chat.postMessage", "chat.update", "chat.postEphemeral"} | {
    m for m in _BUILTIN_REQUIRED if m.startswith("views.")
}
# Arguments that travel as JSON-encoded strings in form bodies.
_JSON_ARGS = ("blocks", "view", "attachments", "metadata")

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
KNOWN_BLOCK_TYPES = frozenset(
    "actions context context_actions divider file header image input markdown rich_text section table video"
    " call".split()
)


class SlackError(Exception):
    """Ends a method with Slack's `{"ok": false, "error": …}` answer."""

    def __init__(self, error: str, *, messages: Iterable[str] = (), status: int = 200, headers=None):
        super().__init__(error)
        self.error, self.messages, self.status, self.headers = error, list(messages), status, headers or {}

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class Call(NamedTuple):
    method: str
    args: dict[str, Any]


@dataclass(frozen=True)
class MethodSpec:
    required: tuple[str, ...]
    json_input: bool


def load_method_specs(directory: Path = METHODS_DIR) -> dict[str, MethodSpec]:
    """Slack's own required-argument lists where vendored, the built-in ones otherwise."""
    specs = {name: MethodSpec(required, name in _BUILTIN_JSON) for name, required in _BUILTIN_REQUIRED.items()}
    for name in specs:
        path = directory / f"{name}.json"
        if path.is_file():
            document = json.loads(path.read_text())
            required = tuple(arg for arg in document["args"].get("required", []) if arg != "token")
            specs[name] = MethodSpec(required, bool(document.get("json_input_supported")))
    return specs


# -- Block Kit checks: the limits Slack enforces with `invalid_blocks` ---------------------------------


def block_problems(blocks: Any, *, limit: int, pointer: str) -> list[str]:
    """What Slack would say is wrong with a blocks array, in its `[ERROR] … [json-pointer:…]` style."""
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{pointer}]"]
    problems = []
    if len(blocks) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]")
    seen_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"{pointer}/{index}"
        problems += _block_problems(block, where)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None:
            if block_id in seen_ids:
                problems.append(f"[ERROR] duplicate block_id {block_id!r} [json-pointer:{where}/block_id]")
            seen_ids.add(block_id)
    return problems


def _block_problems(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"[ERROR] must be an object [json-pointer:{where}]"]
    kind = block.get("type")
    if not kind:
        return [f"[ERROR] missing required field: type [json-pointer:{where}]"]
    if kind not in KNOWN_BLOCK_TYPES:
        return [f"[ERROR] unsupported type: {kind} [json-pointer:{where}/type]"]
    problems = _too_long(block.get("block_id"), 255, f"{where}/block_id")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"[ERROR] must provide text or fields [json-pointer:{where}]")
        if "text" in block:
            problems += _text_problems(block["text"], 3000, f"{where}/text")
        fields = block.get("fields", [])
        if len(fields) > 10:
            problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{where}/fields]")
        for i, field in enumerate(fields):
            problems += _text_problems(field, 2000, f"{where}/fields/{i}")
        if "accessory" in block:
            problems += _element_problems(block["accessory"], f"{where}/accessory")
    elif kind == "header":
        problems += _text_problems(block.get("text"), 150, f"{where}/text", plain_only=True)
    elif kind in ("context", "actions"):
        limit = 10 if kind == "context" else 25
        elements = block.get("elements") or []
        if not elements:
            problems.append(f"[ERROR] missing required field: elements [json-pointer:{where}]")
        if len(elements) > limit:
            problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{where}/elements]")
        check = _context_element_problems if kind == "context" else _element_problems
        for i, element in enumerate(elements):
            problems += check(element, f"{where}/elements/{i}")
        problems += _duplicate_action_ids(elements, where)
    elif kind == "input":
        problems += _text_problems(block.get("label"), 2000, f"{where}/label", plain_only=True)
        if "element" not in block:
            problems.append(f"[ERROR] missing required field: element [json-pointer:{where}]")
        else:
            problems += _element_problems(block["element"], f"{where}/element")
    return problems


def _too_long(value: Any, limit: int, where: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"[ERROR] must be less than {limit + 1} characters [json-pointer:{where}]"]
    return []


def _text_problems(text: Any, limit: int, where: str, *, plain_only: bool = False) -> list[str]:
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(text, dict) or text.get("type") not in allowed:
        return [f"[ERROR] must be a {' or '.join(allowed)} text object [json-pointer:{where}]"]
    if not isinstance(text.get("text"), str) or not text["text"]:
        return [f"[ERROR] must be more than 0 characters [json-pointer:{where}/text]"]
    return _too_long(text["text"], limit, f"{where}/text")


def _context_element_problems(element: Any, where: str) -> list[str]:
    if isinstance(element, dict) and element.get("type") == "image":
        return []
    return _text_problems(element, 3000, where)


def _element_problems(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or not element.get("type"):
        return [f"[ERROR] missing required field: type [json-pointer:{where}]"]
    problems = _too_long(element.get("action_id"), 255, f"{where}/action_id")
    if element["type"] == "button":
        problems += _text_problems(element.get("text"), 75, f"{where}/text", plain_only=True)
        problems += _too_long(element.get("value"), 2000, f"{where}/value")
        problems += _too_long(element.get("url"), 3000, f"{where}/url")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"[ERROR] must be primary or danger [json-pointer:{where}/style]")
    options = element.get("options") or []
    if len(options) > 100:
        problems.append(f"[ERROR] no more than 100 items allowed [json-pointer:{where}/options]")
    for i, option in enumerate(options):
        problems += _text_problems(option.get("text"), 75, f"{where}/options/{i}/text")
        problems += _too_long(option.get("value"), 150, f"{where}/options/{i}/value")
    return problems


def _duplicate_action_ids(elements: list, where: str) -> list[str]:
    ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
    return [f"[ERROR] duplicate action_id {a!r} [json-pointer:{where}]" for a in {*ids} if ids.count(a) > 1]


def view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["[ERROR] must be an object [json-pointer:/view]"]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return ["[ERROR] must be modal or home [json-pointer:/view/type]"]
    problems = block_problems(view.get("blocks"), limit=VIEW_BLOCK_LIMIT, pointer="/view/blocks")
    for key, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        problems += _too_long(view.get(key), limit, f"/view/{key}")
    if kind == "home":
        if "submit" in view or "close" in view:
            problems.append("[ERROR] home views cannot have submit or close [json-pointer:/view]")
        return problems
    problems += _text_problems(view.get("title"), 24, "/view/title", plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            problems += _text_problems(view[key], 24, f"/view/{key}", plain_only=True)
    has_inputs = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
    if has_inputs and "submit" not in view:
        problems.append("[ERROR] must provide submit when input blocks are present [json-pointer:/view]")
    return problems


# -- the fake -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Failure:
    error: str
    status: int
    retry_after: int | None


class FakeSlack:
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
        with self._lock:
            self.calls.append(Call(method, args))
            failure = self._failures[method].popleft() if self._failures[method] else None
            try:
                if failure:
                    raise _as_error(failure)
                self._check_auth(token)
                self._check_required(spec, args)
                return JSONResponse({"ok": True, **getattr(self, "_" + method.replace(".", "_"))(args)})
            except SlackError as error:
                return error.response()

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

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._counter):06d}"

    def _channel(self, channel_id: str, *, posting: bool) -> dict[str, Any] | None:
        """Channels must be known; the bot must be in them to post. DMs to users always work."""
        if channel_id[:1] in ("U", "W", "D"):
            return None
        channel = self.channels.get(channel_id)
        if channel is None:
            raise SlackError("channel_not_found")
        if posting and not channel["is_member"]:
            raise SlackError("not_in_channel")
        return channel

    def _check_message_content(self, args: dict[str, Any], *, require: bool = True) -> None:
        if require and not args.get("text") and not args.get("blocks"):
            raise SlackError("no_text")
        if len(str(args.get("text") or "")) > 40000:
            raise SlackError("msg_too_long")
        if "blocks" in args:
            problems = block_problems(args["blocks"], limit=MESSAGE_BLOCK_LIMIT, pointer="/blocks")
            if problems:
                raise SlackError("invalid_blocks", messages=problems)

    # -- methods -------------------------------------------------------------------------------------

    def _auth_test(self, args: dict) -> dict:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "cheqpoint",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0BOT",
            "is_enterprise_install": False,
        }

    def _chat_postMessage(self, args: dict) -> dict:
        channel = args["channel"]
        self._channel(channel, posting=True)
        self._check_message_content(args)
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": "B0BOT",
            "ts": ts,
            "channel": channel,
            "text": args.get("text", ""),
            "blocks": args.get("blocks", []),
            "thread_ts": args.get("thread_ts"),
            "edits": 0,
        }
        self.messages[channel][ts] = message
        return {"channel": channel, "ts": ts, "message": _public(message)}

    def _chat_update(self, args: dict) -> dict:
        channel, ts = args["channel"], args["ts"]
        self._channel(channel, posting=True)
        message = self.messages[channel].get(ts)
        if message is None:
            raise SlackError("message_not_found")
        self._check_message_content(args, require=False)
        # Slack keeps the old text or blocks when an update leaves them out.
        for key in ("text", "blocks"):
            if key in args:
                message[key] = args[key]
        message["edits"] += 1
        return {"channel": channel, "ts": ts, "text": message["text"], "message": _public(message)}

    def _chat_postEphemeral(self, args: dict) -> dict:
        self._channel(args["channel"], posting=True)
        self._check_message_content(args)
        ts = self._next_ts()
        self.ephemerals.append({**args, "message_ts": ts})
        return {"message_ts": ts}

    def _chat_getPermalink(self, args: dict) -> dict:
        channel, ts = args["channel"], args["message_ts"]
        self._channel(channel, posting=False)
        if ts not in self.messages[channel]:
            raise SlackError("message_not_found")
        return {"channel": channel, "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def _views_open(self, args: dict) -> dict:
        self._use_trigger(args)
        return {"view": self._store_view(args["view"])}

    def _views_push(self, args: dict) -> dict:
        self._use_trigger(args)
        return {"view": self._store_view(args["view"])}

    def _views_update(self, args: dict) -> dict:
        view_id = args.get("view_id") or self._view_id_by_external(args.get("external_id"))
        if not args.get("view_id") and not args.get("external_id"):
            raise SlackError("missing_argument", messages=["[ERROR] missing required field: view_id"])
        current = self.views.get(view_id or "")
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view(args["view"], view_id=view_id)}

    def _views_publish(self, args: dict) -> dict:
        user_id = args["user_id"]
        current = self.home_views.get(user_id)
        if args.get("hash") and current and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        if not isinstance(args["view"], dict) or args["view"].get("type") != "home":
            raise SlackError("invalid_arguments", messages=["[ERROR] must be home [json-pointer:/view/type]"])
        view = self._store_view(args["view"], view_id=current["id"] if current else None)
        self.home_views[user_id] = view
        return {"view": view}

    def _users_info(self, args: dict) -> dict:
        user = self.users.get(args["user"])
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _usergroups_users_list(self, args: dict) -> dict:
        users = self.usergroups.get(args["usergroup"])
        if users is None:
            raise SlackError("no_such_subteam")
        return {"users": list(users)}

    def _conversations_info(self, args: dict) -> dict:
        return {"channel": self._channel(args["channel"], posting=False) or {"id": args["channel"], "is_im": True}}

    # -- views ---------------------------------------------------------------------------------------

    def _use_trigger(self, args: dict) -> None:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            raise SlackError("missing_argument", messages=["[ERROR] missing required field: trigger_id"])
        if trigger in self._used_triggers:  # Slack lets a trigger open one view only
            raise SlackError("exchanged_trigger_id")
        self._used_triggers.add(trigger)

    def _store_view(self, view: Any, *, view_id: str | None = None) -> dict[str, Any]:
        problems = view_problems(view)
        if problems:
            raise SlackError("invalid_arguments", messages=problems)
        view_id = view_id or f"V{next(self._counter):08d}"
        stored = {
            "state": {"values": {}},
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "hash": f"{time.time():.6f}.{next(self._counter)}",
            "app_id": "A0APP",
            "bot_id": "B0BOT",
        }
        self.views[view_id] = stored
        return stored

    def _view_id_by_external(self, external_id: str | None) -> str | None:
        return next((vid for vid, v in self.views.items() if external_id and v.get("external_id") == external_id), None)


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in ("channel", "edits")}


def _as_error(failure: _Failure) -> SlackError:
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    return SlackError(failure.error, status=failure.status, headers=headers)
