"""Decision → Stripe call → callback, and the soak: the benchmarks that need the worker running.

The callback receiver here records when each event arrived and answers 204 at once; the Stripe that
executes the refunds is the test suite's fake, served from this process (see `intake.fake_stripe`).
"""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from holds import rss_mb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from wire import Conn, open_loop, percentile, render


class Arrivals:
    """A callback endpoint that notes when each (approval, event type) first arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.at: dict[tuple[str, str], float] = {}

    async def hook(self, request: Request) -> Response:
        event = json.loads(await request.body())
        key = (event["data"]["approvalId"], event["type"])
        with self._lock:
            self.at.setdefault(key, time.perf_counter())
        return Response(status_code=204)

    def when(self, approval_id: str, kind: str) -> float | None:
        with self._lock:
            return self.at.get((approval_id, kind))


@contextmanager
def receiver() -> Iterator[tuple[Arrivals, str]]:
    from tests.fakes.server import serve

    arrivals = Arrivals()
    with serve(Starlette(routes=[Route("/hook", arrivals.hook, methods=["POST"])])) as url:
        yield arrivals, url


async def decision_to_callback(port: int, headers: dict[str, str], body: dict[str, Any], arrivals: Arrivals,
                               callback_url: str, count: int) -> dict[str, float]:
    """For `count` requests one after another: the click that approves it, then the `approval.executed`
    callback that follows the refund at (fake) Stripe. Times from the click to that callback's arrival."""
    lags: list[float] = []
    failures = 0
    conn = await Conn.open(port)
    create = render("POST", "/v1/approvals", headers, {**body, "callbackUrl": f"{callback_url}/hook"})
    for _ in range(count):
        status, approval = await conn.call(create)
        assert status == 202, approval
        approval_id = approval["approvalId"]
        await asyncio.sleep(0.05)  # a person reads before clicking; the review message's work is done by then
        clicked = time.perf_counter()
        status, answer = await conn.call(render("POST", f"/bench/decide/{approval_id}?verdict=approve", {}))
        assert status == 200 and answer["outcome"] == "decided", answer
        for _ in range(1000):
            arrived = arrivals.when(approval_id, "approval.executed")
            if arrived is not None:
                lags.append(arrived - clicked)
                break
            await asyncio.sleep(0.002)
        else:
            failures += 1
    conn.close()
    return {"count": count, "failed": failures, "p50_ms": percentile(lags, 0.5) * 1000,
            "p99_ms": percentile(lags, 0.99) * 1000}


async def soak(port: int, raw: bytes, rate: float, seconds: float, pid: int,
               state: Any) -> dict[str, float]:
    """Fixed-rate intake for `seconds` after a warm-up; memory growth, errors, and jobs left due."""
    warm = min(15.0, max(3.0, seconds / 5))
    await open_loop(port, raw, rate, warm)
    rss_start = rss_mb(pid)
    ran = await open_loop(port, raw, rate, seconds)
    await asyncio.sleep(2.0)
    rss_end = rss_mb(pid)
    jobs_due = -1
    for _ in range(30):  # the worker finishes what is due
        jobs_due = (await state())["jobs_due"]
        if jobs_due == 0:
            break
        await asyncio.sleep(1.0)
    return {"seconds": seconds, "rate": rate, "requests": ran.sent, "errors": sum(ran.errors.values()),
            "p99_ms": percentile(ran.latencies, 0.99) * 1000, "rss_start_mb": rss_start, "rss_end_mb": rss_end,
            "rss_growth_percent": (rss_end - rss_start) / rss_start * 100, "jobs_left": jobs_due}
