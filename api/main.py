"""The composition root: builds every part from settings and wires them together.

Nothing else constructs vendors' clients or registers listeners; tests build the same app with
their own settings (fake Slack and Stripe URLs, a temporary database) and an injected clock.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from api.approvals.authority import Authority
from api.approvals.decisions import Decisions
from api.approvals.effects import Effects
from api.approvals.routes import router as approvals_router
from api.approvals.service import ApprovalService
from api.approvals.waiters import Waiters
from api.compat.routes import router as compat_router
from api.config import Settings
from api.connections.auth import KeyCache
from api.console import console_router
from api.db import Database, utcnow
from api.execution.gateway import StripeGateway
from api.http import BodyLimit, install_error_handlers
from api.jobs import register_core_jobs
from api.logs import RequestContext
from api.metrics import Metrics, instrument_slack, instrument_stripe
from api.openapi import install_openapi
from api.outbox.registry import JobContext, JobRegistry
from api.outbox.worker import Worker
from api.policy import Policy, default_policy, load_policy
from api.stripe_webhooks.routes import router as stripe_webhooks_router
from api.usage.read import running_totals

log = logging.getLogger("cheqpoint")


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
    authority: Authority  # who may decide; the Slack adapter gives it the user-group directory
    registry: JobRegistry
    worker: Worker
    clock: Callable[[], datetime]
    key_cache: KeyCache = field(default_factory=KeyCache)
    metrics: Metrics = field(default_factory=Metrics)
    # Adapters' own parts: "routers" (mounted on the app), "on_start" / "on_close" (async callables run
    # by `running()`), and whatever else they keep here (the Slack notifier, …).
    extras: dict[str, Any] = field(default_factory=dict)

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
                    http: httpx.AsyncClient | None = None) -> Container:
    db = Database(settings.database_url, clock=clock)
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
    context = JobContext(db=db, settings=settings, http=http, clock=clock, services=None)
    worker = Worker(context, registry, poll_seconds=settings.worker_poll_seconds, clock=clock)
    container = Container(settings=settings, db=db, http=http, waiters=waiters, effects=effects, policy=policy,
                          gateway=gateway, approvals=approvals, decisions=decisions, authority=authority,
                          registry=registry, worker=worker, clock=clock, metrics=Metrics(clock))
    context.services = container
    db.on_enqueued = worker.wake
    register_core_jobs(container)
    if settings.slack_enabled:
        from bot.wiring import install_slack  # the one place api reaches into the Slack adapter

        install_slack(container)
    _instrument(container)
    return container


def _instrument(container: Container) -> None:
    """Feed the metrics: state changes, job attempts, and each Slack and Stripe call."""
    metrics = container.metrics
    container.effects.subscribe(metrics.on_effect)
    container.worker.on_attempt = metrics.on_job_attempt
    if container.gateway.http_client is not None:
        instrument_stripe(container.gateway.http_client, metrics)
    slack_clients = {id(c): c for c in (getattr(container.extras.get("slack_app"), "client", None),
                                        getattr(container.extras.get("slack_notifier"), "client", None)) if c}
    for client in slack_clients.values():
        instrument_slack(client, metrics)


@contextlib.asynccontextmanager
async def running(container: Container, *, worker: bool = True) -> AsyncIterator[Container]:
    """Start the background parts (waiters' listener and poller, the worker) for as long as the block runs."""
    await container.waiters.start()
    for start in container.extras.get("on_start", []):
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
        for close in container.extras.get("on_close", []):
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
            yield

    app = FastAPI(title="Cheqpoint", version="0.1.0", lifespan=lifespan,
                  description="Human approval in Slack for AI agents that move money on Stripe.")
    app.state.container = container
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(approvals_router)
    app.include_router(compat_router)
    app.include_router(stripe_webhooks_router)
    for router in container.extras.get("routers", []):
        app.include_router(router)
    if settings.console_enabled:
        app.include_router(console_router(container))  # the web console, docs/console.md

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

    app.add_middleware(BodyLimit)
    app.add_middleware(RequestContext)  # outermost: its request id is on every line, errors' included
    return app


__all__ = ["Container", "build_container", "create_app", "running"]
