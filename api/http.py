"""HTTP plumbing shared by every route: problem+json errors and the request-size limit."""

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import MAX_BODY_BYTES
from api.errors import AppError, PayloadTooLarge
from api.strict_input import NOT_PARSED, dumps, parse_json_body

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem_response(status: int, title: str, detail: str, *, type_: str = "about:blank",
                     errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # "body" is where FastAPI says the error is, not part of the field's path in the document.
    return [{"loc": [part for part in error["loc"] if part != "body"], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors()]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(exc.problem(), status_code=exc.status, media_type=PROBLEM, headers=exc.headers())

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(400, "Malformed JSON", "the request body is not valid JSON",
                                    type_="https://cheqpoint.dev/problems/malformed-json")
        return problem_response(422, "Validation failed", "the request does not fit the API", errors=errors,
                                type_="https://cheqpoint.dev/problems/validation")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(500, "Internal error", "something went wrong on our side; nothing was lost")


class FiniteJSONResponse(JSONResponse):
    """JSON that renders a non-finite number (stored before intake refused them) as null, not a 500."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


# Where BodyLimit leaves the JSON document it parsed and checked, for the route to use as it is.
PARSED_JSON = "cheqpoint.parsed_json"


class ParsedBodyRequest(Request):
    """A request whose JSON body BodyLimit already parsed (and found strict): not parsed again."""

    async def json(self) -> Any:
        # Taken out of the scope: a held request does not keep its parsed body alive while it waits.
        document = self.scope.pop(PARSED_JSON, NOT_PARSED)
        if document is not NOT_PARSED:
            self._parsed = document
        if hasattr(self, "_parsed"):
            return self._parsed
        return await super().json()


class ParsedBodyRoute(APIRoute):
    """The JSON APIs' route class: the body is read as the document BodyLimit parsed, then validated
    once by the route's model."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(ParsedBodyRequest(request.scope, request.receive))

        return handle


# Bodies under these prefixes are read whole (they are small: MAX_BODY_BYTES) and checked as strict JSON.
JSON_API_PREFIXES = ("/v1/", "/api/")


class BodyLimit:
    """The request-body guard: over MAX_BODY_BYTES is 413, by Content-Length or while streaming (chunked);
    on the JSON APIs, non-finite numbers and deep nesting are refused before any route sees them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, send, 413, PayloadTooLarge(self._too_large()).problem())
                return
        if scope["method"] in ("POST", "PUT", "PATCH") and scope["path"].startswith(JSON_API_PREFIXES):
            await self._checked(scope, receive, send)
        else:
            await self._streamed(scope, receive, send)

    def _too_large(self) -> str:
        return f"request bodies are limited to {self.limit // 1024} KB"

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send, 413, PayloadTooLarge(self._too_large()).problem())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        document, problem = parse_json_body(raw)
        if problem is not None:
            body: dict[str, Any] = {"type": PROBLEM_TYPES[problem.status], "title": problem.title,
                                    "status": problem.status, "detail": problem.detail}
            if problem.loc is not None:
                body["errors"] = [{"loc": problem.loc, "msg": problem.message, "type": problem.kind}]
            await self._refuse(scope, send, problem.status, body)
            return
        if document is not NOT_PARSED:
            scope[PARSED_JSON] = document  # handed to the route (ParsedBodyRoute): parsed once, not twice
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        refused = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit and not refused:
                    refused = True
                    if not started:
                        await self._refuse(scope, send, 413, PayloadTooLarge(self._too_large()).problem())
                    # The app stops reading as if the client had gone; whatever it answers is dropped.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app failed reading a body cut short on purpose; the client already has its 413.

    async def _refuse(self, scope: Scope, send: Send, status: int, problem: dict[str, Any]) -> None:
        if scope["path"].startswith("/api/"):  # the Cheqpoint-compatible API answers errors its own way
            body, media_type = json.dumps({"error": problem["detail"]}).encode(), "application/json"
        else:
            body, media_type = json.dumps(problem).encode(), PROBLEM
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", media_type.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


PROBLEM_TYPES = {400: "https://cheqpoint.dev/problems/malformed-json",
                 422: "https://cheqpoint.dev/problems/validation"}
