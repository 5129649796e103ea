"""The test suite's fake Slack, enforcing Slack's rate limits, as a process of its own for
`bench/flood.py` (so serving it takes no CPU from the load generator). `GET /bench/stats` says what
it saw, with the wall-clock times at which chat.postMessage calls arrived (first, last, count) for
`bench/messages.py`, which asks for no limits at all: a Slack that answers at once.

    python bench/slack_server.py PORT [unlimited]
"""

import json
import re
import sys
import time
from pathlib import Path

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-bench"
APPROVAL_ID = re.compile(r"apr_[0-9a-z]+")
DIGEST_HEADER = re.compile(r"📋 (\d+) waiting")


def visible(message: dict) -> int:
    """How many requests a message shows: a digest lists all its waiting items (page by page), as its
    header says; a review message shows its own request."""
    blocks = json.dumps(message.get("blocks") or [], ensure_ascii=False)
    waiting = DIGEST_HEADER.search(blocks)
    return int(waiting.group(1)) if waiting else len(set(APPROVAL_ID.findall(blocks)))


class PostClock:
    """ASGI middleware noting when each chat.postMessage call arrived (before the fake reads it)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.times: list[float] = []

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/chat.postMessage"):
            self.times.append(time.time())
        await self.inner(scope, receive, send)  # type: ignore[operator]


def app(limits: bool = True) -> tuple[FakeSlack, PostClock]:
    fake = FakeSlack(token=TOKEN, limits=limits)
    clock = PostClock(fake.app)

    async def stats(request: Request) -> JSONResponse:
        top_level = [m for m in fake.messages_in(FakeSlack.REVIEW_CHANNEL) if not m.get("thread_ts")]
        kinds = [(m.get("metadata") or {}).get("event_type") for m in top_level]
        return JSONResponse({"messages": len(top_level), "review_messages": kinds.count("cheqpoint_approval"),
                             "digests": kinds.count("cheqpoint_digest"), "visible": sum(map(visible, top_level)),
                             "post_calls": len(fake.calls_to("chat.postMessage")), "calls": len(fake.calls),
                             "rate_limited": fake.rate_limited, "post_arrivals": len(clock.times),
                             "first_post": min(clock.times, default=None), "last_post": max(clock.times, default=None)})

    async def posts(request: Request) -> JSONResponse:
        """The cheap part of the stats, to poll while posting: rendering every message for `visible`
        would take CPU from the server being measured."""
        return JSONResponse({"post_arrivals": len(clock.times), "calls": len(fake.calls),
                             "first_post": min(clock.times, default=None), "last_post": max(clock.times, default=None)})

    fake.app.router.routes.insert(0, Route("/bench/stats", stats))
    fake.app.router.routes.insert(0, Route("/bench/posts", posts))
    return fake, clock


if __name__ == "__main__":
    _fake, served = app(limits="unlimited" not in sys.argv[2:])
    uvicorn.run(served, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
