"""Held requests under load: many concurrent holds released by paced decisions, and a burst.

Each hold is one connection of `bench.wire`: an agent creates its request (`POST /v1/approvals`) and
holds on it with `GET …?waitMs=60000` on the same connection; when the server's 60 s cap answers it
still pending, it holds again, as the SDKs do. Decisions are made through the bench
server's in-process route, as a Slack click is handled, by `reviewers` connections at once.

Two clocks are read: the server's (from a decision's `decidedAt` to the moment the hold let go,
recorded in the server) and the client's (from the moment the click was sent to the moment the hold's
answer arrived at the agent, which includes the decision's own work and queueing — what a person
clicking sees).
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wire import Conn, percentile, render

BODY: dict[str, Any] = {}  # set by run.py: the intake body of every hold


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


@dataclass
class HoldsResult:
    count: int
    rss_idle_mb: float = 0.0
    rss_held_mb: float = 0.0
    idle_cpu_percent: float = 0.0  # the server's CPU while every hold waits and nothing happens
    deciding_s: float = 0.0
    released: int = 0
    lost: int = 0  # holds that never came back with their decision
    refused: int = 0  # requests answered 503 (busy) and sent again
    server_lags: list[float] = field(default_factory=list)
    client_lags: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        return {"holds": self.count, "rss_idle_mb": self.rss_idle_mb, "rss_held_mb": self.rss_held_mb,
                "idle_cpu_percent": self.idle_cpu_percent, "released": self.released, "lost": self.lost,
                "refused_503": self.refused,
                "decisions_per_s": self.count / self.deciding_s if self.deciding_s else 0.0,
                "server_release_p50_ms": percentile(self.server_lags, 0.5) * 1000,
                "server_release_p99_ms": percentile(self.server_lags, 0.99) * 1000,
                "client_release_p50_ms": percentile(self.client_lags, 0.5) * 1000,
                "client_release_p99_ms": percentile(self.client_lags, 0.99) * 1000}


async def _get(port: int, path: str, headers: dict[str, str]) -> Any:
    conn = await Conn.open(port)
    try:
        for _attempt in range(30):
            status, answer = await conn.call(render("GET", path, headers))
            if status != 503:  # busy: asked again after Retry-After
                break
            await asyncio.sleep(2.0)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {answer}")
        return answer
    finally:
        conn.close()


async def pending_ids(port: int, headers: dict[str, str]) -> list[str]:
    ids: list[str] = []
    cursor = ""
    while True:
        page = await _get(port, f"/v1/approvals?status=pending&limit=200{cursor}", headers)
        ids += [a["approvalId"] for a in page["data"]]
        if not page["nextCursor"]:
            return ids
        cursor = f"&cursor={page['nextCursor']}"


async def held_requests(port: int, headers: dict[str, str], count: int, pid: int, *, reviewers: int,
                        pace_per_s: float | None, time_limit: float, creators: int = 32) -> HoldsResult:
    """Open `count` holds, then decide them all: at `pace_per_s`, or as fast as `reviewers` can click.

    The requests are created by `creators` agents at a time (ten thousand arriving at once would
    measure the server's overload instead: requests queued for the database pool time out), each
    then holding with `GET …?waitMs=`."""
    result = HoldsResult(count=count, rss_idle_mb=rss_mb(pid))
    clicked: dict[str, float] = {}
    arrived: dict[str, float] = {}
    create = render("POST", "/v1/approvals", headers, BODY)
    creating = asyncio.Semaphore(creators)

    async def call(conn: Conn, raw: bytes) -> tuple[int, Any]:
        # A request refused because the server is busy (503, api/admission.py) stored nothing: it is
        # sent again after Retry-After, as the SDKs do.
        for _attempt in range(60):
            status, answer = await conn.call(raw)
            if status != 503:
                return status, answer
            result.refused += 1
            await asyncio.sleep(2.0)
        return status, answer

    async def hold() -> None:
        # Created asynchronously by a bounded number of agents at a time, then held with `waitMs`. Each
        # agent connects when it is about to ask: the server closes a connection that sends nothing
        # within its header timeout (api/serving.py), as it would an idle client's.
        async with creating:
            conn = await Conn.open(port)
            status, approval = await call(conn, create)
        if status == 202:
            status = 200
        while status == 200 and approval["status"] == "pending":
            status, approval = await call(
                conn, render("GET", f"/v1/approvals/{approval['approvalId']}?waitMs=60000", headers))
        if status == 200 and approval["status"] == "rejected":
            arrived[approval["approvalId"]] = time.perf_counter()
        conn.close()

    began = time.perf_counter()
    tasks = [asyncio.create_task(hold()) for _ in range(count)]
    while (held := (await _get(port, "/bench/state", headers))["held"]) < count:
        if time.perf_counter() - began > time_limit / 2 or all(task.done() for task in tasks):
            print(f"  only {held:,} of {count:,} holds opened; deciding those", flush=True)
            break
        await asyncio.sleep(1.0)
    ids = await pending_ids(port, headers)
    await asyncio.sleep(1.0)
    result.rss_held_mb = rss_mb(pid)
    cpu = cpu_seconds(pid)
    await asyncio.sleep(5.0)
    result.idle_cpu_percent = (cpu_seconds(pid) - cpu) / 5.0 * 100

    queue: asyncio.Queue[str] = asyncio.Queue()
    for approval_id in ids:
        queue.put_nowait(approval_id)
    pause = reviewers / pace_per_s if pace_per_s else 0.0

    async def reviewer() -> None:
        conn = await Conn.open(port)
        while not queue.empty():
            approval_id = queue.get_nowait()
            clicked[approval_id] = time.perf_counter()
            status, answer = await call(conn, render("POST", f"/bench/decide/{approval_id}", {}))
            # After a 503 the click is sent again; a first attempt may have been recorded before the
            # refusal (its answer lost), so the second may find the request already decided.
            assert status == 200 and (answer["outcome"] == "decided" or result.refused), answer
            if pause:
                await asyncio.sleep(pause)
        conn.close()

    deciding = time.perf_counter()
    await asyncio.gather(*(reviewer() for _ in range(reviewers)))
    result.deciding_s = time.perf_counter() - deciding
    remaining = max(10.0, time_limit - (time.perf_counter() - began))
    _done, late = await asyncio.wait(tasks, timeout=remaining)
    for task in late:
        task.cancel()
    result.released = len(arrived)
    result.lost = count - len(arrived)
    result.client_lags = [arrived[i] - clicked[i] for i in arrived if i in clicked]
    result.server_lags = await _get(port, "/bench/releases", headers)
    return result
