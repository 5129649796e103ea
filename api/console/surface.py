"""The console as a decision surface: it serves pages and decides through the core; it is told
nothing, because it reads the current state on every page (Slack shows the outcome of its votes)."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter

from api.console import console_router
from api.surfaces.port import DecisionSurface

if TYPE_CHECKING:
    from api.main import Container


class ConsoleSurface(DecisionSurface):
    name = "console"

    def __init__(self, router: APIRouter) -> None:
        self._router = router

    @property
    def routers(self) -> Sequence[APIRouter]:
        return (self._router,)


def install(container: "Container") -> ConsoleSurface | None:
    if not container.settings.console_enabled:
        return None
    return ConsoleSurface(console_router(container))
