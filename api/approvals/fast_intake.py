"""Native intake, `POST /v1/approvals`, served in a short stack.

Through the framework an intake request spends about as much CPU in FastAPI's machinery (routing,
solving the bearer and header dependencies, the Request object, the exception middlewares) as in
the service's own work. This middleware answers the plain request itself, with the same
authentication, validation and answer as `create_approval` in routes.py (both call
`intake_answer`), which stays the documented route and serves everything else.

It takes only what it is sure of: a POST to exactly that path, without a query string, with a JSON
content type, whose body BodyLimit parsed and found strict (it is installed inside BodyLimit, which
leaves the document in scope[PARSED_JSON]), that `ApprovalCreate` validates, with at most one
Idempotency-Key within the route's limit. Anything else goes on to the app unchanged, so errors keep
their one source: a body that does not validate gets FastAPI's 422, a non-JSON content type its own.
The bearer is checked first, as the route's dependency is solved before the body is validated: a
request without a valid key is 401 whatever its body, on either path.

The compatible API's `POST /api/approvals/request` is taken on the same terms, in its route's order
(body, then key) and with its `{"error": …}` answers: both through api/compat/routes.py's functions.
"""

from collections.abc import Coroutine
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.approvals.routes import MAX_IDEMPOTENCY_KEY, intake_answer
from api.approvals.schemas import ApprovalCreate
from api.approvals.short_stack import error_answer, header
from api.compat.routes import compat_answer, request_answer
from api.compat.schemas import CompatCreate
from api.connections.auth import authenticate_bearer
from api.connections.models import Connection
from api.http import PARSED_JSON

PATH = "/v1/approvals"
# The compatible API's plain intake (no hold): its body is validated before the key is checked, and
# its errors are `{"error": …}` (api/compat/routes.py answers both ways through the same functions).
COMPAT_PATH = "/api/approvals/request"
# The content types FastAPI reads as JSON that agents send; other JSON types go through the route.
JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")
NO_KEY = ""  # a request without an Idempotency-Key header


def intake_key(scope: Scope) -> str | None:
    """The Idempotency-Key (NO_KEY for none) of a request this middleware serves, or None for others."""
    if (scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in (PATH, COMPAT_PATH)
            or scope["query_string"] or PARSED_JSON not in scope):
        return None
    content_type = key = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
        elif name == b"idempotency-key":
            if key is not None:
                return None  # more than one: the framework's reading decides
            key = value
    if content_type is None or content_type.lower() not in JSON_TYPES:
        return None
    if key is None:
        return NO_KEY
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        return None
    return key.decode("latin-1")


def _answering(approvals: Any, connection: Connection, document: Any,
               key: str | None) -> Coroutine[Any, Any, Response] | None:
    # The validated body lives only in the returned coroutine, which lets it go before a hold waits.
    try:
        body = ApprovalCreate.model_validate(document)
    except ValidationError:
        return None
    return intake_answer(approvals, connection, body, key)


class FastIntake:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = intake_key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        container = scope["app"].state.container
        if scope["path"] == COMPAT_PATH:
            await self._compat(scope, receive, send, container, key or None)
            return
        try:
            connection = await authenticate_bearer(container, header(scope, b"authorization"))
        except Exception as exc:
            await error_answer(exc)(scope, receive, send)
            return
        answering = _answering(container.approvals, connection, scope[PARSED_JSON], key or None)
        if answering is None:
            await self.app(scope, receive, send)  # FastAPI's own 422, from the same document
            return
        del scope[PARSED_JSON], connection  # not kept while a `timeoutMs` hold waits
        try:
            response = await answering
        except Exception as exc:
            response = error_answer(exc)
        await response(scope, receive, send)

    async def _compat(self, scope: Scope, receive: Receive, send: Send, container: Any, key: str | None) -> None:
        try:
            body = CompatCreate.model_validate(scope[PARSED_JSON])
        except ValidationError:
            await self.app(scope, receive, send)  # the route's own 400, from the same document
            return
        del scope[PARSED_JSON]
        try:
            response = await request_answer(container, header(scope, b"x-api-key") or None, body, key)
        except Exception as exc:
            response = compat_answer(exc)
        await response(scope, receive, send)


__all__ = ["FastIntake", "intake_key"]
