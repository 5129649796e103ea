"""Job kinds and their handlers, and what a handler may say about a failure."""

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from api.config import Settings
from api.db import Database

if TYPE_CHECKING:
    from api.main import Container


class Retry(Exception):
    """Try again later; `delay` overrides the back-off (e.g. a Retry-After)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Deferred(Retry):
    """Not a failure: the job waits for a rate limit's slot. The attempt is not counted against
    `max_attempts`, and `reservation` (the slot promised, if any) is handed back on the next run."""

    def __init__(self, message: str, *, delay: float, reservation: str | None = None) -> None:
        super().__init__(message, delay=delay)
        self.reservation = reservation


# The slot a rate limiter promised the running job when it deferred it last time: set by the
# worker around each handler, consumed by the limiter (see bot.budget).
current_reservation: ContextVar[str | None] = ContextVar("current_reservation", default=None)


class Park(Exception):
    """A final failure: no more attempts. The message says why, for the operator."""


@dataclass
class JobContext:
    db: Database
    settings: Settings
    http: httpx.AsyncClient
    clock: Callable[[], datetime]
    services: "Container"  # the composition root's: approvals, decisions, the Stripe gateway, the surfaces, …
    attempt: int = 1
    max_attempts: int = 1
    job_id: str = ""

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class BatchItem:
    """One claimed job handed to a batch handler: its own context (attempt, job id), its payload, and
    the rate-limit slot it was promised when last deferred (set it as `current_reservation` around
    the call that draws from that budget)."""

    ctx: JobContext
    payload: dict[str, Any]
    reservation: str | None = None


# Runs several due jobs of one kind at once and answers, in their order, what each single handler
# would have raised (None: done). Worth it where each job's reads and writes can be one statement
# for the lot (the review message's post: a snapshot query and a store for N approvals).
BatchHandler = Callable[[list[BatchItem]], Awaitable[list[BaseException | None]]]


@dataclass
class Backoff:
    base: float = 2.0
    cap: float = 3600.0
    schedule: list[float] | None = None  # explicit delays, attempt 1 → schedule[0]

    def delay(self, attempt: int) -> float:
        if self.schedule:
            return self.schedule[min(attempt, len(self.schedule)) - 1]
        return min(self.cap, self.base * 2 ** (attempt - 1))


@dataclass
class Registration:
    handler: Handler
    backoff: Backoff = field(default_factory=Backoff)
    batch: BatchHandler | None = None  # used when two or more jobs of the kind are claimed together
    batch_size: int = 0  # how many of the kind a worker's round may take at once (see Worker._claim)


class JobRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, Registration] = {}

    def register(self, kind: str, handler: Handler, *, backoff: Backoff | None = None) -> None:
        self._kinds[kind] = Registration(handler, backoff or Backoff())

    def register_batch(self, kind: str, batch: BatchHandler, *, size: int = 64) -> None:
        """A batch handler beside the kind's single one (registered first; registering the kind
        again drops it, so a wrapper that replaces the handler must be followed by this). `size`: up
        to this many due jobs of the kind go to one call, past the worker's usual round."""
        registration = self._kinds[kind]
        registration.batch, registration.batch_size = batch, size

    def get(self, kind: str) -> Registration | None:
        return self._kinds.get(kind)

    def __contains__(self, kind: str) -> bool:
        return kind in self._kinds
