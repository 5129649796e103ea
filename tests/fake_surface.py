"""A minimal third decision surface, registered by tests the way a real one is (an
`InstalledSurface` naming this module): it records what it is told and decides through the port."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.actors import Actor
from api.approvals.events import Event
from api.approvals.models import Approval
from api.surfaces.installed import INSTALLED, InstalledSurface
from api.surfaces.port import Decider, DecisionSurface

if TYPE_CHECKING:
    from api.main import Container

FAKE = InstalledSurface("fake", "tests.fake_surface:install")
WITH_FAKE = (*INSTALLED, FAKE)


class FakeSurface(DecisionSurface):
    name = "fake"

    def __init__(self, decider: Decider) -> None:
        self.decider = decider
        self.told: list[tuple[str, Event, str, bool]] = []  # approval id, event, status, in a transaction
        self.lifecycle: list[str] = []
        self._router = APIRouter(prefix="/fake")
        self._router.add_api_route("/{approval_id}/decide", self.decide, methods=["POST"])

    async def notify(self, session: AsyncSession, approval: Approval, event: Event) -> None:
        self.told.append((approval.id, event, approval.status, session.in_transaction()))

    def events(self, approval_id: str) -> list[Event]:
        return [event for told_id, event, _, _ in self.told if told_id == approval_id]

    @property
    def routers(self) -> Sequence[APIRouter]:
        return (self._router,)

    async def start(self) -> None:
        self.lifecycle.append("start")

    async def close(self) -> None:
        self.lifecycle.append("close")

    async def decide(self, approval_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /fake/{id}/decide {"person", "verdict", "note"?, "edits"?, "revision"?}: the port's decide,
        nothing else; a refusal is the core's NotAnApprover, answered 403 by the app's error handler."""
        actor = Actor("slack_user", body["person"], via={"surface": "fake"})
        result = await self.decider.decide(approval_id, actor, body["verdict"], note=body.get("note"),
                                           edits=body.get("edits"), revision=body.get("revision"))
        return {"outcome": result.outcome, "status": result.approval.status, "revision": result.approval.revision}


def install(container: "Container") -> FakeSurface:
    return FakeSurface(container.decisions)
