"""What a state change sets off, decided by whoever subscribed in the composition root.

The approval service says *what happened* (an `Event`: created, approved, …) inside its
transaction; each subscriber (the decision surfaces, execution, callbacks, metrics) enqueues its
own outbox jobs. The core never imports the surfaces, and a deployment without Slack simply has
no Slack subscriber.
"""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.events import Event
from api.approvals.models import Approval

Subscriber = Callable[[AsyncSession, Approval, Event], Awaitable[None]]


class Effects:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def emit(self, session: AsyncSession, approval: Approval, event: Event) -> None:
        event = Event(event)  # a status passed on as its event (see state.finalize); anything else raises
        for subscriber in self._subscribers:
            await subscriber(session, approval, event)


__all__ = ["Effects", "Event", "Subscriber"]
