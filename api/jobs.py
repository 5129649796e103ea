"""The core's own job kinds. Adapters (Slack, execution, callbacks) register theirs beside these."""

from typing import Any

from api.execution.job import execute_approval
from api.outbox.registry import JobContext


async def expire_approval(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Scheduled at intake for `expiresAt`: survives restarts because it is a row, not a timer."""
    await ctx.services.decisions.expire(payload["approval_id"])


def register_core_jobs(container: Any) -> None:
    container.registry.register("approval.expire", expire_approval)
    container.registry.register("stripe.execute", execute_approval)
