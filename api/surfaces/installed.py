"""The installed decision surfaces: the one place that names them.

Each entry names its module by string, so no `api` module imports an adapter package: the
composition root installs them (`install_all`), and `api.models` (hence Alembic and the tests)
imports their ORM models (`load_models`). Adding a surface is one line here.

`install` is "module:function"; the function takes the `Container` and returns the surface, or
None when the deployment has not configured it (Slack without a bot token, the console without
SLACK_CLIENT_ID).
"""

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.surfaces.port import DecisionSurface

if TYPE_CHECKING:
    from api.main import Container


@dataclass(frozen=True)
class InstalledSurface:
    name: str
    install: str  # "package.module:function", called with the Container
    models: str | None = None  # a module whose import registers the surface's tables on Base.metadata

    def installer(self) -> Callable[["Container"], DecisionSurface | None]:
        module, _, function = self.install.partition(":")
        return getattr(importlib.import_module(module), function)


INSTALLED: tuple[InstalledSurface, ...] = (
    InstalledSurface("slack", "bot.wiring:install_slack", models="bot.models"),
    InstalledSurface("console", "api.console.surface:install"),
)


def load_models(entries: Sequence[InstalledSurface] = INSTALLED) -> None:
    """Import every installed surface's ORM models (whether or not it is configured here: the schema
    is the same for every deployment, so migrations match the models everywhere)."""
    for entry in entries:
        if entry.models:
            importlib.import_module(entry.models)


def install_all(container: "Container", entries: Sequence[InstalledSurface] = INSTALLED) -> list[DecisionSurface]:
    """Build each configured surface, in the registry's order."""
    surfaces = []
    for entry in entries:
        surface = entry.installer()(container)
        if surface is not None:
            surfaces.append(surface)
    return surfaces


__all__ = ["INSTALLED", "InstalledSurface", "install_all", "load_models"]
