"""What a state change sets off, decided by whoever subscribed in the composition root.

The approval service says *what happened* (`created`, `approved`, …) inside its transaction; each
subscriber (Slack, execution, callbacks, alerts) enqueues its own outbox jobs. The core never
imports the adapters, and a deployment without Slack simply has no Slack subscriber.
"""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.models import Approval

EVENTS = frozenset({
    "created",        # pending, waiting for reviewers
    "auto_decided",   # a rule approved or rejected it at intake (followed by approved / rejected)
    "vote",           # one approval of several recorded; still pending
    "revised",        # a reviewer's edit made a new revision (after its "vote"): approvers asked again
    "approved", "rejected", "expired", "cancelled",
    "executed", "execution_failed",
    "execution_updated",  # Stripe reported a later outcome (a refund or payout failed, a payout was paid, …)
    "verified",       # a request accepted unverified was verified against Stripe later; still pending
})

Subscriber = Callable[[AsyncSession, Approval, str], Awaitable[None]]


class Effects:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def emit(self, session: AsyncSession, approval: Approval, event: str) -> None:
        assert event in EVENTS, event
        for subscriber in self._subscribers:
            await subscriber(session, approval, event)
