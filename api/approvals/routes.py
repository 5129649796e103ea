"""The native intake API, CONTRACT §3."""

import weakref
from collections.abc import Awaitable
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from api.approvals.actors import Actor
from api.approvals.docs import ApprovalListOut, ApprovalOut
from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.approvals.schemas import ApprovalCreate, approval_out
from api.approvals.service import ApprovalService, Intake
from api.config import MAX_HOLD_MS
from api.connections.auth import bearer_connection
from api.connections.models import Connection
from api.http import FiniteJSONResponse, ParsedBodyRoute

router = APIRouter(prefix="/v1", tags=["approvals"], route_class=ParsedBodyRoute)
Authed = Annotated[Connection, Depends(bearer_connection)]
MAX_IDEMPOTENCY_KEY = 255  # characters; the short stack (fast_intake.py) takes only keys within it too


def _services(request: Request):
    return request.app.state.container


# The holds released by one decision share the settled Approval it handed them (waiters.py), and with
# it one rendering of the answer: the JSON is built once per approval, not once per held request.
_answers: "weakref.WeakKeyDictionary[Approval, bytes]" = weakref.WeakKeyDictionary()


def answer_body(approval: Approval) -> bytes:
    body = _answers.get(approval)
    if body is None:
        body = _answers[approval] = FiniteJSONResponse(approval_out(approval)).body
    return body


def held_body(approvals: ApprovalService, connection_id: str, approval_id: str, wait_ms: int) -> Awaitable[bytes]:
    """The held answer's JSON. A pending approval the waiters remember (waiters.py `hold_rendered`)
    is answered without the database: ten thousand holds come back every 60 s to stay held.

    Not a coroutine itself, and the load a `partial`, not a closure: what a waiting hold keeps is
    the waiters' frame alone (bench/hold_memory.py: a frame and a closure were about 400 B a hold)."""
    if wait_ms <= 0:
        return _read_now(approvals, connection_id, approval_id)
    return approvals.waiters.hold_rendered(approval_id, connection_id, min(wait_ms, MAX_HOLD_MS) / 1000,
                                           partial(approvals.get, connection_id, approval_id), answer_body)


async def _read_now(approvals: ApprovalService, connection_id: str, approval_id: str) -> bytes:
    return answer_body(await approvals.get(connection_id, approval_id))


async def intake_answer(approvals: ApprovalService, connection: Connection, body: ApprovalCreate,
                        idempotency_key: str | None) -> Response:
    """Create the approval, then answer: 202 pending, 200 decided at once, or the held answer for
    `timeoutMs`. The route below and the short stack (fast_intake.py) both answer through this."""
    if body.timeout_ms is None:
        created = await approvals.create(connection, Intake(body, idempotency_key=idempotency_key))
        approval = created.approval
        status_code = 202 if approval.status == ApprovalStatus.PENDING else 200
        return FiniteJSONResponse(approval_out(approval), status_code=status_code)
    # The hold's slot is taken before anything is stored: a request refused for holds leaves no approval.
    async with approvals.hold_slot(connection.id, body.timeout_ms):
        since = approvals.waiters.heard
        created = await approvals.create(connection, Intake(body, idempotency_key=idempotency_key))
        approval_id, timeout_ms = created.approval.id, body.timeout_ms
        if not created.replayed:  # what was just created is its state: the hold need not read it back
            approvals.waiters.remember_created(created.approval, connection.id, since, answer_body)
        del created, body  # what the hold does not need is not kept while it waits
        body_out = await held_body(approvals, connection.id, approval_id, timeout_ms)
    return Response(body_out, media_type="application/json")


@router.post("/approvals", status_code=202, response_model=ApprovalOut,
             responses={200: {"model": ApprovalOut, "description": "decided at once, or held (`timeoutMs`)"},
                        202: {"description": "pending review"}})
async def create_approval(
    body: ApprovalCreate, request: Request, connection: Authed,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_IDEMPOTENCY_KEY)] = None,
) -> Response:
    return await intake_answer(_services(request).approvals, connection, body, idempotency_key)


@router.get("/approvals/{approval_id}", response_model=ApprovalOut)
async def get_approval(approval_id: str, request: Request, connection: Authed,
                       wait_ms: Annotated[int, Query(alias="waitMs", ge=0)] = 0) -> JSONResponse:
    approvals = _services(request).approvals
    async with approvals.hold_slot(connection.id, wait_ms):
        body = await held_body(approvals, connection.id, approval_id, wait_ms)
    return Response(body, media_type="application/json")


@router.get("/approvals", response_model=ApprovalListOut)
async def list_approvals(
    request: Request, connection: Authed, status: ApprovalStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: str | None = None,
) -> JSONResponse:
    rows, next_cursor = await _services(request).approvals.list(connection.id, status=status, limit=limit,
                                                                cursor=cursor)
    return FiniteJSONResponse({"data": [approval_out(a) for a in rows], "nextCursor": next_cursor})


@router.post("/approvals/{approval_id}/cancel", response_model=ApprovalOut)
async def cancel_approval(approval_id: str, request: Request, connection: Authed) -> JSONResponse:
    actor = Actor("system", connection.id, f"{connection.name} (the requesting agent)")
    approval = await _services(request).approvals.cancel(connection.id, approval_id, actor)
    return FiniteJSONResponse(approval_out(approval))
