"""Where a request is shown to its reviewers, as a link an agent can pass on (`reviewUrl`).

The core keeps no surface's state (Slack's channel and ts live in Slack's own table), so it asks
the surfaces: each one that can link to a request registers a lookup here at start-up. The first
surface with an answer wins; with none registered (Slack disabled) there is no link.
"""

from collections.abc import Awaitable, Callable

ReviewUrl = Callable[[str], Awaitable[str | None]]  # approval id → link, or None when there is none yet


class ReviewLinks:
    def __init__(self) -> None:
        self._sources: list[ReviewUrl] = []

    def register(self, source: ReviewUrl) -> None:
        self._sources.append(source)

    async def url_for(self, approval_id: str) -> str | None:
        for source in self._sources:
            url = await source(approval_id)
            if url is not None:
                return url
        return None
