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

import logging
import re
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.admission import overloaded
from api.approvals.routes import held_answer
from api.connections.auth import authenticate_bearer
from api.errors import AppError
from api.http import PROBLEM, problem_response

log = logging.getLogger(__name__)
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
            connection = await authenticate_bearer(container, _header(scope, b"authorization"))
            async with container.approvals.hold_slot(connection.id, wait_ms):
                approval = await container.approvals.hold(connection.id, approval_id, wait_ms)
            del connection
            response = held_answer(approval)
        except AppError as exc:  # as install_error_handlers answers it
            response = JSONResponse(exc.problem(), status_code=exc.status, media_type=PROBLEM, headers=exc.headers())
        except Exception as exc:
            refused = overloaded(exc)
            if refused is not None:
                response = JSONResponse(refused.problem(), status_code=503, media_type=PROBLEM,
                                        headers=refused.headers())
            else:
                log.exception("unhandled error", exc_info=exc)
                response = problem_response(500, "Internal error", "something went wrong on our side; nothing was lost")
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


__all__ = ["HeldReads", "held_wait_ms"]
