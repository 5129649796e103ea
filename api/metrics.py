"""`GET /metrics`: the service's own numbers, in Prometheus' text format.

Counters and histograms are kept per process (each replica and each worker is scraped on its own);
the gauges about shared state (the outbox, callbacks) are read from the database at scrape time, so
any replica reports the same queue. Every series is listed, with example alerts, in docs/operations.md.
"""

import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import stripe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.enums import ApprovalStatus
from api.approvals.events import Event
from api.approvals.models import Approval
from api.callbacks.enums import DeliveryStatus
from api.callbacks.models import CallbackDelivery
from api.db import Database, utcnow
from api.outbox.kinds import OPEN_STATUSES, JobStatus
from api.outbox.models import Job

# Seconds from a request's creation to its decision / execution: reviewers take minutes to hours.
_HUMAN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600)
_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SETTLING = {"approved", "rejected", "expired", "cancelled"}
_EXECUTED = {"executed", "execution_failed"}
# Object ids in a Stripe path (`/v1/subscriptions/sub_123`) become `{id}`, so the label stays bounded.
_ID_SEGMENT = re.compile(r"/[a-z]{1,6}_(?=[A-Za-z0-9]*[A-Z0-9])[A-Za-z0-9]{6,}")


class Metrics:
    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.approvals = Counter("cheqpoint_approvals", "Approval requests by action and what became of them.",
                                 ["action", "outcome"], registry=r)
        self.decision_seconds = Histogram("cheqpoint_approval_decision_seconds",
                                          "Time from a request's creation to its decision.", ["action", "outcome"],
                                          buckets=_HUMAN_BUCKETS, registry=r)
        self.execution_seconds = Histogram("cheqpoint_approval_execution_seconds",
                                           "Time from a request's creation to the end of its Stripe execution.",
                                           ["action", "outcome"], buckets=_HUMAN_BUCKETS, registry=r)
        self.holds_open = Gauge("cheqpoint_holds_open", "Synchronous requests held open in this process.",
                                registry=r)
        self.outbox_jobs = Gauge("cheqpoint_outbox_jobs", "Outbox jobs not yet done, by kind and status.",
                                 ["kind", "status"], registry=r)
        self.outbox_oldest_due = Gauge("cheqpoint_outbox_oldest_due_seconds",
                                       "Age of the oldest job that is due and not done, by kind.", ["kind"], registry=r)
        self.job_attempts = Counter("cheqpoint_job_attempts", "Job attempts run by this process.",
                                    ["kind", "outcome"], registry=r)
        self.job_seconds = Histogram("cheqpoint_job_seconds", "How long one job attempt took.", ["kind"],
                                     buckets=_CALL_BUCKETS, registry=r)
        self.vendor_calls = Histogram("cheqpoint_vendor_call_seconds",
                                      "Slack and Stripe API calls: latency by method and status (ok, an error "
                                      "code, an HTTP status, or transport).", ["vendor", "method", "status"],
                                      buckets=_CALL_BUCKETS, registry=r)
        self.callbacks = Gauge("cheqpoint_callback_deliveries", "Callback deliveries by status.", ["status"],
                               registry=r)
        self.callback_lag = Gauge("cheqpoint_callback_oldest_pending_seconds",
                                  "Age of the oldest callback not delivered yet (0 when none).", registry=r)
        for status in DeliveryStatus:
            self.callbacks.labels(status).set(0)
        self.callback_lag.set(0)

    # ---- hooks, wired in the composition root -----------------------------------------------------

    async def on_effect(self, _session: AsyncSession, approval: Approval, event: Event) -> None:
        """An Effects subscriber: counts outcomes and times decisions and executions."""
        if event in ("created", "auto_decided", "vote"):
            if event == "created":
                self.approvals.labels(approval.action, ApprovalStatus.PENDING).inc()
            return
        self.approvals.labels(approval.action, event).inc()
        if approval.created_at is None:
            return
        end = (approval.decided_at if event in _SETTLING else None) or self.clock()
        elapsed = max(0.0, (end - approval.created_at).total_seconds())
        if event in _SETTLING:
            self.decision_seconds.labels(approval.action, event).observe(elapsed)
        elif event in _EXECUTED:
            self.execution_seconds.labels(approval.action, event).observe(elapsed)

    def on_job_attempt(self, kind: str, outcome: str, seconds: float) -> None:
        self.job_attempts.labels(kind, outcome).inc()
        self.job_seconds.labels(kind).observe(seconds)

    def vendor_call(self, vendor: str, method: str, status: str, seconds: float) -> None:
        self.vendor_calls.labels(vendor, method, status).observe(seconds)

    # ---- scrape ------------------------------------------------------------------------------------

    async def render(self, db: Database, holds_open: int, now: datetime) -> tuple[bytes, str]:
        self.holds_open.set(holds_open)
        async with db.read() as session:
            await self._read_outbox(session, now)
            await self._read_callbacks(session, now)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def _read_outbox(self, session: AsyncSession, now: datetime) -> None:
        open_jobs = Job.status.in_(OPEN_STATUSES)
        rows = await session.execute(select(Job.kind, Job.status, func.count()).where(open_jobs)
                                     .group_by(Job.kind, Job.status))
        self.outbox_jobs.clear()
        for kind, status, count in rows:
            self.outbox_jobs.labels(kind, status).set(count)
        due = await session.execute(select(Job.kind, func.min(Job.run_at))
                                    .where(Job.status == JobStatus.QUEUED, Job.run_at <= now).group_by(Job.kind))
        self.outbox_oldest_due.clear()
        for kind, oldest in due:
            self.outbox_oldest_due.labels(kind).set(max(0.0, (now - oldest).total_seconds()))

    async def _read_callbacks(self, session: AsyncSession, now: datetime) -> None:
        rows = await session.execute(select(CallbackDelivery.status, func.count()).group_by(CallbackDelivery.status))
        for status, count in rows:
            self.callbacks.labels(status).set(count)
        oldest = await session.scalar(select(func.min(CallbackDelivery.created_at))
                                      .where(CallbackDelivery.status == DeliveryStatus.PENDING))
        self.callback_lag.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0)


def instrument_stripe(http_client: stripe.HTTPXClient, metrics: Metrics) -> None:
    """Time each request the Stripe SDK sends through its HTTP client (one wrapped method on our instance)."""
    send: Callable[..., Awaitable[tuple[Any, int, Any]]] = http_client.request_async

    async def timed(method: str, url: str, *args: Any, **kwargs: Any) -> tuple[Any, int, Any]:
        path = "/" + url.split("?", 1)[0].split("://", 1)[-1].split("/", 1)[-1]
        name = f"{method.upper()} {_ID_SEGMENT.sub('/{id}', path)}"
        started = time.perf_counter()
        status = "transport"
        try:
            result = await send(method, url, *args, **kwargs)
            status = str(result[1])
            return result
        finally:
            metrics.vendor_call("stripe", name, status, time.perf_counter() - started)

    http_client.request_async = timed  # type: ignore[method-assign]


def instrument_slack(client: AsyncWebClient, metrics: Metrics) -> None:
    """Time each Web API call of a slack_sdk AsyncWebClient; the status is `ok` or Slack's error code."""
    call: Callable[..., Awaitable[AsyncSlackResponse]] = client.api_call

    async def timed(api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        started = time.perf_counter()
        status = "transport"
        try:
            response = await call(api_method, **kwargs)
            status = "ok" if response.get("ok") else str(response.get("error"))
            return response
        except SlackApiError as exc:
            status = str(exc.response.get("error") or exc.response.status_code)
            raise
        finally:
            metrics.vendor_call("slack", api_method, status, time.perf_counter() - started)

    client.api_call = timed  # type: ignore[method-assign]


__all__ = ["Metrics", "instrument_slack", "instrument_stripe"]
