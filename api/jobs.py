"""The core's own job kinds: expiry, execution, verification, callbacks and pruning the velocity
counters. Surfaces register theirs (`DecisionSurface.register_jobs`) beside these."""

from typing import TYPE_CHECKING, Any

from api.callbacks.delivery import backoff_schedule
from api.callbacks.events import on_approval_event as callbacks_on_event
from api.callbacks.job import deliver_callback
from api.execution.job import execute_approval
from api.facts.job import verify_later
from api.outbox.kinds import JobKind
from api.outbox.registry import Backoff, JobContext
from api.usage import prune as usage_prune

if TYPE_CHECKING:
    from api.main import Container


async def expire_approval(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Scheduled at intake for `expiresAt`: survives restarts because it is a row, not a timer."""
    await ctx.services.decisions.expire(payload["approval_id"])


def register_core_jobs(container: "Container") -> None:
    container.registry.register(JobKind.EXPIRE_APPROVAL, expire_approval)
    container.registry.register(JobKind.EXECUTE, execute_approval)
    container.registry.register(JobKind.VERIFY, verify_later)
    container.registry.register(usage_prune.KIND, usage_prune.prune)  # enqueued hourly by the counters' writes
    container.effects.subscribe(callbacks_on_event)
    # The handler schedules its own retries; this back-off only covers a crash inside it.
    container.registry.register(JobKind.DELIVER_CALLBACK, deliver_callback,
                                backoff=Backoff(schedule=backoff_schedule()))
