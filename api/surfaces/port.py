"""The decision-surface port: what a surface is told, and how it decides.

Told: `notify(session, approval, event)` for every `Event` of every request, inside the
transaction that made it (so a surface only enqueues its own outbox jobs there, never calls out):
`created` (it needs review), `vote` / `revised` (it changed; `revised` means earlier approvals no
longer count), a final event (`approved`, `rejected`, `expired`, `cancelled`), and the execution's
(`executed`, `execution_failed`, `execution_updated`). A surface that shows nothing on its own (the
console reads on demand) keeps the default, which ignores them.

Decides: through the core's one `Decider.decide` (`Container.decisions`), never by writing votes
itself. It asks the `Authority` who may decide, refuses a stale revision, records one vote per person
and revision, counts the quorum and releases held agents. A surface may ask
`Authority.may_decide` beforehand to choose what to show (buttons, a form), but the answer that
counts is the one `decide` gets; a refusal is `NotAnApprover` (403), audited once, by the core.

Brings (all optional): routers mounted on the app, job handlers for the outbox, start / close hooks
run by `api.main.running`, instrumentation of its own HTTP clients, and an ORM models module named in
`api.surfaces.installed`.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.actors import Actor
from api.approvals.decisions import DecisionResult
from api.approvals.events import Event
from api.approvals.models import Approval
from api.metrics import Metrics
from api.outbox.registry import JobRegistry


class Decider(Protocol):
    """The one way a surface records a decision; `api.approvals.decisions.Decisions` is it."""

    async def decide(self, approval_id: str, actor: Actor, verdict: str, *, note: str | None = None,
                     edits: dict[str, Any] | None = None, revision: int | None = None) -> DecisionResult:
        """Approve or reject the revision the person saw. Raises NotAnApprover (the Authority said no)
        or ValidationFailed (bad verdict, missing note, an edit the action refuses); a stale revision,
        an already-final request or a second vote come back as the result's `outcome`."""
        ...


class DecisionSurface(ABC):
    """One installed surface. Subclasses set `name` and override what they bring."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Short and stable ("slack", "console"): it names the surface in logs and `Container.surface`."""

    async def notify(self, session: AsyncSession, approval: Approval, event: Event) -> None:
        """Told of every event in the approval's transaction: enqueue what must follow, nothing else."""
        return None

    def register_jobs(self, registry: JobRegistry) -> None:
        """Register the outbox job kinds this surface runs (posting, updating, reminding, …)."""
        return None

    @property
    def routers(self) -> Sequence[APIRouter]:
        """HTTP routes it serves (Slack's events endpoint, the console's pages); mounted by create_app."""
        return ()

    async def start(self) -> None:
        """Called once the app runs (e.g. open a Socket Mode connection)."""
        return None

    async def close(self) -> None:
        """Called on shutdown, before the core closes the database: finish what is in flight."""
        return None

    def instrument(self, metrics: Metrics) -> None:
        """Count its calls to its vendor (e.g. Slack's Web API) in the metrics."""
        return None


__all__ = ["Decider", "DecisionSurface"]
