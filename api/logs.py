"""Structured logs: one format for the server, the app and the worker, with the ids of what is going on.

`LOG_FORMAT=json` writes one JSON object per line (for log shippers); `console` writes a line a person
reads. Either way every record carries `request_id`, `connection_id` and `approval_id` when the code
that logged it runs on behalf of one: they live in context variables, set by the request middleware,
the auth dependency and the worker, and copied onto each record by a filter.

The access line is ours, not uvicorn's: it logs the path without its query string, because agents
sometimes put a key in one (`?apiKey=`) and a log is no place for a key.
"""

import contextvars
import logging
import re
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LogFormat = Literal["json", "console"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
connection_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("connection_id", default=None)
approval_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("approval_id", default=None)
_CONTEXT = {"request_id": request_id, "connection_id": connection_id, "approval_id": approval_id}

access_log = logging.getLogger("cheqpoint.access")

# An approval id in a path (`/v1/approvals/apr_…`, `/api/approvals/…`): the line is about that approval.
_APPROVAL_IN_PATH = re.compile(r"/approvals/(apr_[A-Za-z0-9]{1,60})")
# A caller's own request id is echoed only when it is short and plain, so it cannot forge log content.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ContextFilter(logging.Filter):
    """Copy the current ids onto every record (None when unknown, so the JSON keys are stable)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)  # uvicorn's terminal colours: noise in a log line
        for name, var in _CONTEXT.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{name}={getattr(record, name)}" for name in _CONTEXT if getattr(record, name, None))
        return f"{line} [{ids}]" if ids else line


def configure_logging(fmt: LogFormat = "json", level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, Bolt's, Alembic's) through one stderr handler in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(connection_id)s %(approval_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        ))
    else:
        handler.setFormatter(ConsoleFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own loggers keep their messages but lose their handlers: one stream, one format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # Its access logger would print the query string; ours (RequestContext) does not.
    logging.getLogger("uvicorn.access").disabled = True


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Set some of the ids for the duration of a block (the worker uses it for each job)."""
    tokens = [(_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class RequestContext:
    """ASGI middleware: a request id for each request (echoed as `X-Request-Id`) and one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:  # no dict of every header per request; the last one wins, as in one
            if name == b"x-request-id":
                given = value
        given_id = given.decode("latin-1")
        rid = given_id if _SAFE_REQUEST_ID.match(given_id) else f"req_{secrets.token_hex(8)}"
        path = scope.get("path", "")  # ASGI keeps the query string apart: it is never logged
        match = _APPROVAL_IN_PATH.search(path)
        started = time.perf_counter()
        status = 0
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        # What bound() does, without a generator and lists per request: the ids are set for this request.
        tokens = (request_id.set(rid), approval_id.set(match.group(1) if match else None), connection_id.set(None))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):  # the record, its extras and the clock only when kept
                client = scope.get("client") or ("-", 0)
                access_log.info(
                    "%s %s %s", scope.get("method"), path, status or "-",
                    extra={"method": scope.get("method"), "path": path, "status": status or None,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                           "client": client[0]})
            connection_id.reset(tokens[2])
            approval_id.reset(tokens[1])
            request_id.reset(tokens[0])


__all__ = ["LogFormat", "RequestContext", "approval_id", "bound", "configure_logging", "connection_id",
           "request_id"]
