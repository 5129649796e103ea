"""The app on a real port for clients that need a socket (the official `cheqpoint` SDK, our SDK, the MCP
server's subprocess), with a handle on its container and event loop.

Reviewers' decisions are made on the served app's own container, on its own event loop, as the Slack
handlers make them; the holds they release are the real ones.
"""

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any

from sqlalchemy import func, select

from api.approvals.actors import Actor
from api.approvals.models import Approval
from api.main import build_container, create_app
from tests.fakes.server import serve

REVIEWER = Actor("slack_user", "U012ABCDEF", "Dana Reviewer")


class Live:
    """The app on a real port, with a handle on its container and event loop."""

    def __init__(self, settings: Any) -> None:
        self.container = build_container(settings)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.container.on_start.append(self._started)
        self.app = create_app(settings, container=self.container)
        self.url = ""
        self.key = ""
        self.connection_id = ""
        self.secret = ""

    async def _started(self) -> None:
        self.loop = asyncio.get_running_loop()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=15)

    def new_connection(self, name: str = "support-agent") -> tuple[str, str, str]:
        from api.connections import service

        created = self.run(self.container.db.write(lambda session: service.create(session, name)))
        return created.connection.id, created.key, created.connection.webhook_secret

    def approval(self, approval_id: str) -> Approval:
        return self.run(self.container.approvals.get(None, approval_id))

    def count(self) -> int:
        async def count() -> int:
            async with self.container.db.read() as session:
                return await session.scalar(select(func.count()).select_from(Approval))

        return self.run(count())

    def decide(self, approval_id: str, verdict: str, note: str | None = None,
               edits: dict[str, Any] | None = None) -> Any:
        return self.run(self.container.decisions.decide(approval_id, REVIEWER, verdict, note=note, edits=edits))

    def pending_ids(self) -> list[str]:
        rows, _ = self.run(self.container.approvals.list(self.connection_id, status="pending"))
        return [row.id for row in rows]

    def decide_when_pending(self, verdict: str, note: str | None = None,
                            edits: dict[str, Any] | None = None) -> threading.Thread:
        """A reviewer in another thread, deciding the first request that shows up."""
        def reviewer() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                pending = self.pending_ids()
                if pending:
                    self.decide(pending[0], verdict, note, edits)
                    return
                time.sleep(0.02)

        thread = threading.Thread(target=reviewer, daemon=True)
        thread.start()
        return thread


def start_live(settings: Any) -> Iterator[Live]:
    live = Live(settings)
    with serve(live.app) as url:
        live.url = url
        live.connection_id, live.key, live.secret = live.new_connection()
        yield live
