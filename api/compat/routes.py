"""The Cheqpoint-compatible routes (CONTRACT §3b).

Agents written against Cheqpoint's official SDKs reach the same approval service as native ones by
changing their base URL. Errors here are `{"error": "<message>"}`, which those SDKs read, so the
routes use their own route class instead of the app-wide problem+json handlers.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.admission import overloaded
from api.approvals.models import Approval
from api.compat.docs import InboundOut, RequestCreatedOut, RequestOut
from api.compat.schemas import MAX_WAIT_MS, CompatCreate, compat_view, inbound_view, upper_status
from api.compat.translate import app_error_status, error_message, to_intake
from api.connections.auth import authenticate
from api.connections.models import Connection
from api.errors import AppError, Unauthorized
from api.http import FiniteJSONResponse, ParsedBodyRoute

log = logging.getLogger(__name__)


def compat_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class CompatRoute(ParsedBodyRoute):
    """Turns every error raised on these paths, request validation included, into `{"error": …}`."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = exc.errors()
                if any(e["type"] == "json_invalid" for e in errors):
                    return compat_error(400, "the request body is not valid JSON")
                return compat_error(400, error_message("the request does not fit the API", list(errors)))
            except StarletteHTTPException as exc:
                return compat_error(exc.status_code, str(exc.detail))
            except Exception as exc:
                return compat_answer(exc)

        return handle


def compat_answer(exc: Exception) -> JSONResponse:
    """The `{"error": …}` answer to an error raised while serving a request (api/approvals/fast_intake.py too)."""
    if isinstance(exc, AppError):
        return compat_error(app_error_status(exc), error_message(exc.detail, exc.errors), exc.headers())
    refused = overloaded(exc)  # the database could not serve in time: 503, come back later
    if refused is not None:
        return compat_error(refused.status, refused.detail, refused.headers())
    log.exception("unhandled error on the compatible API", exc_info=exc)
    return compat_error(500, "something went wrong on our side; nothing was lost")


router = APIRouter(prefix="/api", tags=["cheqpoint-compatible"], route_class=CompatRoute)
ApiKey = Annotated[str | None, Header(alias="x-api-key")]
IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key", max_length=255)]


async def _connection(container: Any, header_key: str | None, body_key: str | None = None) -> Connection:
    """`x-api-key` authenticates; an `apiKey` in the body is accepted too, but must not contradict it."""
    header_key = header_key.strip() if header_key else None
    if header_key and body_key and body_key.strip() != header_key:
        raise Unauthorized("the apiKey in the body does not match the x-api-key header")
    key = header_key or (body_key.strip() if body_key else None)
    if not key:
        raise Unauthorized("send the Connection Key in the x-api-key header")
    return await authenticate(container, key)


async def _create(container: Any, body: CompatCreate, api_key: str | None, idem: str | None) -> Approval:
    connection = await _connection(container, api_key, body.api_key)
    created = await container.approvals.create(connection, to_intake(body, idem))
    return created.approval


@router.post("/webhooks/inbound", response_model=InboundOut)
async def inbound(body: CompatCreate, request: Request, x_api_key: ApiKey = None,
                  idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """Create a request; with `maxWaitMs`, hold up to that long (at most 10,000 ms) for the decision."""
    container = request.app.state.container
    approvals = container.approvals
    if not body.max_wait_ms:
        approval = await _create(container, body, x_api_key, idempotency_key)
        return FiniteJSONResponse(inbound_view(approval, await container.review_links.url_for(approval.id)))
    connection = await _connection(container, x_api_key, body.api_key)
    # Longer waits are held at the cap, not refused; `app.state.compat_max_wait_ms` lowers it (tests).
    wait_ms = min(body.max_wait_ms, getattr(request.app.state, "compat_max_wait_ms", MAX_WAIT_MS))
    async with approvals.hold_slot(connection.id, wait_ms):  # before anything is stored
        approval = await _create(container, body, x_api_key, idempotency_key)
        approval = await approvals.hold(approval.connection_id, approval.id, wait_ms)
    return FiniteJSONResponse(inbound_view(approval, await container.review_links.url_for(approval.id)))


@router.post("/approvals/request", response_model=RequestCreatedOut)
async def create_request(body: CompatCreate, request: Request, x_api_key: ApiKey = None,
                         idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """Create a request and answer at once with its id and status (decided already when a rule did)."""
    return await request_answer(request.app.state.container, x_api_key, body, idempotency_key)


async def request_answer(container: Any, api_key: str | None, body: CompatCreate, idem: str | None) -> Response:
    """`create_request`'s answer; the short stack (api/approvals/fast_intake.py) answers through it too."""
    approval = await _create(container, body, api_key, idem)
    return FiniteJSONResponse({"id": approval.id, "status": upper_status(approval)})


@router.get("/approvals/{approval_id}", response_model=RequestOut)
async def get_request(approval_id: str, request: Request, x_api_key: ApiKey = None) -> JSONResponse:
    connection = await _connection(request.app.state.container, x_api_key)
    approval = await request.app.state.container.approvals.get(connection.id, approval_id)
    return FiniteJSONResponse(compat_view(approval))


__all__ = ["compat_answer", "request_answer", "router"]
