"""Which Slack methods the fake knows, their required arguments, and Slack's error answer."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from starlette.responses import JSONResponse

METHODS_DIR = Path(__file__).resolve().parents[4] / "shared" / "vendor" / "slack" / "methods"


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
    "conversations.history": ("channel",),
}
# Slack reads JSON bodies only for these; elsewhere a JSON body's arguments are not seen.
_BUILTIN_JSON = {"auth.test", "chat.postMessage", "chat.update", "chat.postEphemeral"} | {
    m for m in _BUILTIN_REQUIRED if m.startswith("views.")
}
# Arguments that travel as JSON-encoded strings in form bodies.
_JSON_ARGS = ("blocks", "view", "attachments", "metadata")


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

