"""The composition root: builds every part from settings and wires them together.

Nothing else constructs vendors' clients or registers listeners; tests build the same app with
their own settings (fake Slack and Stripe URLs, a temporary database) and an injected clock.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from api.admission import install_admission
from api.approvals.authority import Authority
from api.approvals.decisions import Decisions
from api.approvals.effects import Effects
from api.approvals.fast_intake import FastIntake
from api.approvals.held_reads import HeldReads
from api.approvals.review_links import ReviewLinks
from api.approvals.routes import router as approvals_router
from api.approvals.service import ApprovalService
from api.approvals.waiters import Waiters
from api.callbacks.ssrf import Resolver
from api.compat.routes import router as compat_router
from api.config import Settings
from api.connections.auth import KeyCache
from api.db import Database, utcnow
from api.execution.gateway import StripeGateway
from api.gc_tuning import frozen_after_startup
from api.http import BodyLimit, install_error_handlers
from api.jobs import register_core_jobs
from api.logs import RequestContext
from api.metrics import Metrics, instrument_stripe
from api.openapi import install_openapi
from api.outbox.registry import JobContext, JobRegistry
from api.outbox.worker import Worker
from api.policy import Policy, default_policy, load_policy
from api.stripe_webhooks.routes import router as stripe_webhooks_router
from api.surfaces.installed import INSTALLED, InstalledSurface, install_all
from api.surfaces.port import DecisionSurface
from api.usage.read import running_totals

log = logging.getLogger("cheqpoint")

Hook = Callable[[], Awaitable[None]]


@dataclass
class Container:
    """Everything the routes, handlers and jobs need, built once per app."""

    settings: Settings
    db: Database
    http: httpx.AsyncClient
    waiters: Waiters
    effects: Effects
    policy: Policy
    gateway: StripeGateway
    approvals: ApprovalService
    decisions: Decisions
    authority: Authority  # who may decide; the Slack surface gives it the user-group directory
    registry: JobRegistry
    worker: Worker = field(init=False)  # built with a JobContext that names this container
    clock: Callable[[], datetime]
    key_cache: KeyCache = field(default_factory=KeyCache)
    metrics: Metrics = field(default_factory=Metrics)
    # Links to where surfaces show a request (the compatible API's `reviewUrl`), registered by them.
    review_links: ReviewLinks = field(default_factory=ReviewLinks)
    # The installed decision surfaces (api.surfaces.installed), each with its own parts: Slack's
    # app, budget and notifier live on its surface object, not here.
    surfaces: list[DecisionSurface] = field(default_factory=list)
    # Hooks run by `running()` besides the surfaces' start / close (tests use them to wait for the app).
    on_start: list[Hook] = field(default_factory=list)
    on_close: list[Hook] = field(default_factory=list)
    # How callback delivery resolves a host; None: the system's resolver (tests point it at 127.0.0.1).
    callback_resolver: Resolver | None = None

    def surface(self, name: str) -> DecisionSurface | None:
        return next((s for s in self.surfaces if s.name == name), None)

    @property
    def routers(self) -> list[APIRouter]:
        return [router for surface in self.surfaces for router in surface.routers]

    async def close(self) -> None:
        """Release what the container itself opened: the Stripe client, the HTTP client, the database."""
        await self.gateway.aclose()
        await self.http.aclose()
        await self.db.close()


def load_configured_policy(settings: Settings) -> Policy:
    if settings.policy_file:
        return load_policy(settings.policy_file, settings.approvers)
    return default_policy(settings.approvers)


def build_container(settings: Settings, *, clock: Callable[[], datetime] = utcnow,
                    http: httpx.AsyncClient | None = None,
                    surfaces: Sequence[InstalledSurface] = INSTALLED) -> Container:
    db = Database(settings.database_url, clock=clock, pool_size=settings.db_pool_size,
                  pool_timeout=settings.db_pool_timeout_seconds)
    http = http or httpx.AsyncClient(timeout=httpx.Timeout(15.0), follow_redirects=False)
    waiters = Waiters(db)
    effects = Effects()
    policy = load_configured_policy(settings)
    gateway = StripeGateway(
        settings.stripe_secret_key.get_secret_value() if settings.stripe_secret_key else None,
        settings.stripe_api_base)
    approvals = ApprovalService(db, settings=settings, waiters=waiters, effects=effects, policy=lambda: policy,
                                gateway=gateway, totals=running_totals, clock=clock)
    authority = Authority(lambda: policy, settings.approvers)
    decisions = Decisions(approvals, authority)
    registry = JobRegistry()
    container = Container(settings=settings, db=db, http=http, waiters=waiters, effects=effects, policy=policy,
                          gateway=gateway, approvals=approvals, decisions=decisions, authority=authority,
                          registry=registry, clock=clock, metrics=Metrics(clock))
    context = JobContext(db=db, settings=settings, http=http, clock=clock, services=container)
    container.worker = Worker(context, registry, poll_seconds=settings.worker_poll_seconds, clock=clock)
    db.on_enqueued = container.worker.wake
    register_core_jobs(container)
    for surface in install_all(container, surfaces):  # the registry, by module name: api imports no surface
        surface.register_jobs(registry)
        effects.subscribe(surface.notify)
        container.surfaces.append(surface)
    _instrument(container)
    return container


def _instrument(container: Container) -> None:
    """Feed the metrics: state changes, job attempts, and each Slack and Stripe call."""
    metrics = container.metrics
    container.effects.subscribe(metrics.on_effect)
    container.worker.on_attempt = metrics.on_job_attempt
    if container.gateway.http_client is not None:
        instrument_stripe(container.gateway.http_client, metrics)
    for surface in container.surfaces:
        surface.instrument(metrics)  # Slack's clients, through api.metrics.instrument_slack


@contextlib.asynccontextmanager
async def running(container: Container, *, worker: bool = True) -> AsyncIterator[Container]:
    """Start the background parts (waiters' listener and poller, the worker) for as long as the block runs."""
    await container.waiters.start()
    for surface in container.surfaces:
        await surface.start()
    for start in container.on_start:
        await start()
    task = asyncio.create_task(container.worker.run(), name="cheqpoint-worker") if worker else None
    try:
        yield container
    finally:
        if task is not None:
            await container.worker.shutdown()  # claimed jobs go back to the queue at once
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await container.waiters.stop()
        for surface in container.surfaces:
            await surface.close()
        for close in container.on_close:
            await close()
        await container.close()


def create_app(settings: Settings | None = None, *, container: Container | None = None,
               run_worker: bool = True) -> FastAPI:
    settings = settings or Settings()
    container = container or build_container(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for line in settings.describe():
            log.info(line)
        async with running(container, worker=run_worker):
            with frozen_after_startup():  # full collections stop walking start-up's objects (api/gc_tuning.py)
                yield

    # FastAPI's own OpenTelemetry hooks are off: the service keeps its metrics in Prometheus
    # (/metrics), and with them on every request asks OpenTelemetry for its providers (2 % of intake).
    app = FastAPI(title="Cheqpoint", version="0.1.0", lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  description="Human approval in Slack for AI agents that move money on Stripe.")
    app.state.container = container
    install_error_handlers(app)
    install_admission(app)  # an overloaded database pool answers 503 with Retry-After, not 500
    install_openapi(app)
    app.include_router(approvals_router)
    app.include_router(compat_router)
    app.include_router(stripe_webhooks_router)
    for router in container.routers:  # Slack's /slack/events, the console (docs/console.md), …
        app.include_router(router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        try:
            async with container.db.read() as session:
                await session.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        body, media_type = await container.metrics.render(container.db, container.waiters.held, container.clock())
        return Response(body, media_type=media_type)

    app.add_middleware(FastIntake)  # `POST /v1/approvals` in a short stack, inside BodyLimit: the body is checked
    app.add_middleware(BodyLimit)
    app.add_middleware(HeldReads)  # `GET …?waitMs=` waits in a short stack: ten thousand holds fit in memory
    app.add_middleware(RequestContext)  # outermost: its request id is on every line, errors' included
    return app


__all__ = ["Container", "build_container", "create_app", "running"]
