"""The held read, `GET /v1/approvals/{id}?waitMs=N`, served in a short stack.

Ten thousand agents holding at once are ten thousand suspended requests, and what each costs is
mostly the stack it waits in. Through the framework a waiting request keeps about twenty coroutine
frames, two exit stacks, a Request, the dependencies' results and every middleware's closures
(measured with bench/hold_memory.py: about 39 KB a hold). This middleware answers exactly that
request — the same authentication, hold slot, hold and answer as `get_approval` in routes.py, which
stays the documented route and serves everything else — and waits in a few frames.

It takes only what it is sure of: a GET without a body on that path whose query is one `waitMs` of
plain digits above zero. Anything else (no `waitMs`, one FastAPI would refuse with 422, a body) goes on
to the app unchanged, so errors keep their one source. Installed inside RequestContext, so the held
read keeps its request id, access line and log context.
"""

import re
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.approvals.routes import held_body
from api.approvals.short_stack import error_answer, header
from api.connections.auth import authenticate_bearer

HELD_READ = re.compile(r"/v1/approvals/([^/]+)")
MAX_DIGITS = 12  # longer numbers go to the framework, which parses (and caps) them as it always has


def held_wait_ms(scope: Scope) -> int | None:
    """The `waitMs` of a held read this middleware serves, or None for anything else."""
    if scope["type"] != "http" or scope["method"] != "GET" or not HELD_READ.fullmatch(scope["path"]):
        return None
    for name, value in scope["headers"]:
        if name in (b"content-length", b"transfer-encoding") and value not in (b"0",):
            return None  # a body on a GET: the framework's (and BodyLimit's) case
    query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    if len(query) != 1 or query[0][0] != "waitMs":
        return None
    raw = query[0][1]
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_DIGITS or int(raw) <= 0:
        return None
    return int(raw)


class HeldReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait_ms = held_wait_ms(scope)
        if wait_ms is None:
            await self.app(scope, receive, send)
            return
        container = scope["app"].state.container
        approval_id = HELD_READ.fullmatch(scope["path"]).group(1)  # type: ignore[union-attr]
        try:
            connection = await authenticate_bearer(container, header(scope, b"authorization"))
            async with container.approvals.hold_slot(connection.id, wait_ms):
                body = await held_body(container.approvals, connection.id, approval_id, wait_ms)
            del connection
            response = Response(body, media_type="application/json")
        except Exception as exc:
            response = error_answer(exc)
        await response(scope, receive, send)


__all__ = ["HeldReads", "held_wait_ms"]
