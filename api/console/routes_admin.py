"""Connections (list, create with the key and secret shown once, revoke) and health (the outbox's
depth, parked jobs with Requeue). Approvers only: a Connection key moves money, a viewer only reads."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.connections import service as connections
from api.console import admin
from api.console.context import Console, Viewer
from api.console.gate import form_sender, reader, refused_page
from api.console.pages import page, secure
from api.errors import AppError
from api.outbox.service import requeue_parked

NOTICES = {"revoked": "The Connection is revoked; its pending requests were cancelled.",
           "requeued": "The job is queued to run again."}


def register(router: APIRouter, console: Console) -> None:
    container = console.container

    async def approver(request: Request) -> Viewer | Response:
        viewer = await reader(console, request)
        if isinstance(viewer, Viewer) and not viewer.person.may_decide_anything:
            return refused_page(viewer.person.name, "Only approvers manage Connections and jobs; viewers may "
                                                    "read the queue and history.")
        return viewer

    async def connections_page(viewer: Viewer, *, created: connections.NewConnection | None = None,
                               notice: str | None = None, problem: str | None = None, status: int = 200) -> Response:
        async with container.db.read() as session:
            rows = await connections.list_all(session)
        return page("connections.html", {"me": viewer.person, "csrf": viewer.session.csrf, "rows": rows,
                                         "created": created, "notice": notice, "problem": problem}, status=status)

    @router.get("/connections")
    async def list_connections(request: Request, notice: str | None = None) -> Response:
        viewer = await approver(request)
        if isinstance(viewer, Response):
            return viewer
        return await connections_page(viewer, notice=NOTICES.get(notice or ""))

    @router.post("/connections")
    async def create_connection(request: Request) -> Response:
        sent = await form_sender(console, request)
        if isinstance(sent, Response):
            return sent
        viewer, form = sent
        if not viewer.person.may_decide_anything:
            return refused_page(viewer.person.name, "Only approvers create Connections.")
        actor = {"type": "slack_user", "id": viewer.person.user_id, "name": viewer.person.name, "via": "console"}

        async def write(session: AsyncSession) -> connections.NewConnection:
            return await connections.create(session, form.get("name") or "", actor)

        try:
            created = await container.db.write(write)
        except AppError as exc:
            return await connections_page(viewer, problem=exc.detail, status=exc.status)
        # Shown on this answer only (no redirect, no-store): the key is never stored in the clear.
        return await connections_page(viewer, created=created, status=201)

    @router.post("/connections/{connection_id}/revoke")
    async def revoke_connection(request: Request, connection_id: str) -> Response:
        sent = await form_sender(console, request)
        if isinstance(sent, Response):
            return sent
        viewer, _ = sent
        if not viewer.person.may_decide_anything:
            return refused_page(viewer.person.name, "Only approvers revoke Connections.")
        actor = {"type": "slack_user", "id": viewer.person.user_id, "name": viewer.person.name, "via": "console"}
        try:
            await container.db.write(lambda session: connections.revoke(session, connection_id,
                                                                        effects=container.effects, actor=actor))
        except AppError as exc:
            return await connections_page(viewer, problem=exc.detail, status=exc.status)
        container.key_cache.clear()  # its key stops working now, not when the cache lapses
        return secure(RedirectResponse("/console/connections?notice=revoked", status_code=303))

    @router.get("/health")
    async def health(request: Request, notice: str | None = None) -> Response:
        viewer = await approver(request)
        if isinstance(viewer, Response):
            return viewer
        async with container.db.read() as session:
            outbox = await admin.outbox_health(session)
        return page("health.html", {"me": viewer.person, "csrf": viewer.session.csrf, "outbox": outbox,
                                    "notice": NOTICES.get(notice or ""), "problem": None})

    @router.post("/jobs/{job_id}/requeue")
    async def requeue(request: Request, job_id: str) -> Response:
        sent = await form_sender(console, request)
        if isinstance(sent, Response):
            return sent
        viewer, _ = sent
        if not viewer.person.may_decide_anything:
            return refused_page(viewer.person.name, "Only approvers requeue jobs.")
        try:
            await container.db.write(lambda session: requeue_parked(session, container.clock(), job_id))
        except AppError as exc:
            return refused_page(viewer.person.name, exc.detail, status=exc.status)
        container.worker.wake()
        return secure(RedirectResponse("/console/health?notice=requeued", status_code=303))
