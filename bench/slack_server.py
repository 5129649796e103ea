"""The test suite's fake Slack, enforcing Slack's rate limits, as a process of its own for
`bench/flood.py` (so serving it takes no CPU from the load generator). `GET /bench/stats` says what
it saw.

    python bench/slack_server.py PORT
"""

import json
import re
import sys
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


def app() -> FakeSlack:
    fake = FakeSlack(token=TOKEN, limits=True)

    async def stats(request: Request) -> JSONResponse:
        top_level = [m for m in fake.messages_in(FakeSlack.REVIEW_CHANNEL) if not m.get("thread_ts")]
        return JSONResponse({"messages": len(top_level), "visible": sum(map(visible, top_level)),
                             "post_calls": len(fake.calls_to("chat.postMessage")), "calls": len(fake.calls),
                             "rate_limited": fake.rate_limited})

    fake.app.router.routes.insert(0, Route("/bench/stats", stats))
    return fake


if __name__ == "__main__":
    uvicorn.run(app().app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
