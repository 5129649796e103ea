"""HTTP plumbing shared by every route: problem+json errors and the request-size limit."""

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import MAX_BODY_BYTES
from api.errors import AppError, PayloadTooLarge

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
        return JSONResponse(exc.problem(), status_code=exc.status, media_type=PROBLEM)

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


class BodyLimit:
    """Refuse bodies over MAX_BODY_BYTES with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = PayloadTooLarge(f"request bodies are limited to {self.limit // 1024} KB")
        if scope["path"].startswith("/api/"):  # the Cheqpoint-compatible API answers errors its own way
            body, media_type = json.dumps({"error": error.detail}).encode(), "application/json"
        else:
            body, media_type = json.dumps(error.problem()).encode(), PROBLEM
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", media_type.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
