"""The web console at /console: Sign in with Slack, the queue, one request's story, decisions and
history (docs/console.md)."""

from typing import TYPE_CHECKING

from fastapi import APIRouter

from api.console import routes_admin, routes_auth, routes_policy, routes_read, routes_write
from api.console.context import Console

if TYPE_CHECKING:
    from api.main import Container


def console_router(container: "Container") -> APIRouter:
    console = Console.build(container)
    router = APIRouter(prefix="/console", include_in_schema=False)
    routes_auth.register(router, console)
    routes_read.register(router, console)
    routes_write.register(router, console)
    routes_admin.register(router, console)
    routes_policy.register(router, console)
    return router


__all__ = ["console_router"]
