"""Held requests under load: many concurrent holds released by paced decisions, and a burst.

Each hold is one connection of `bench.wire`: an agent creates its request (`POST /v1/approvals`) and
holds on it with `GET …?waitMs=60000` on the same connection; when the server's 60 s cap answers it
still pending, it holds again, as the SDKs do. Decisions are made through the bench
server's in-process route, as a Slack click is handled, by `reviewers` connections at once.

Agents arrive as real ones do: open loop, one every 1/`arrival_per_s` seconds whatever the server
does (not all at once, and not paced by the answers), and a request refused `503` is sent again after
its `Retry-After` plus a random part of it, so refused agents do not come back in step. The target is
every hold open at once, then decided: decisions start only when creation is over.

Every phase has a deadline — opening, the idle measurement, deciding, collecting the answers — and
together they fit in `time_limit`; what did not happen by its deadline is cancelled and counted
(`not_opened`, `lost`), never waited for.

Two clocks are read: the server's (from a decision's `decidedAt` to the moment the hold let go,
recorded in the server) and the client's (from the moment the click was sent to the moment the hold's
answer arrived at the agent, which includes the decision's own work and queueing — what a person
clicking sees).
"""

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wire import Conn, percentile, render

CAP_MS = 60000  # the server's longest hold: an agent still pending then holds again

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
    lost: int = 0  # holds that never came back with their decision (not_opened included)
    not_opened: int = 0  # agents whose hold was not open when the opening phase ended
    failed: int = 0  # agents whose connection failed, or that got an answer other than 200/202/503
    opening_s: float = 0.0  # first arrival to the last hold open (or to the phase's deadline)
    refused: int = 0  # requests answered 503 (busy) and sent again
    decided: int = 0  # clicks answered within the deciding phase
    server_lags: list[float] = field(default_factory=list)
    client_lags: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        return {"holds": self.count, "rss_idle_mb": self.rss_idle_mb, "rss_held_mb": self.rss_held_mb,
                "idle_cpu_percent": self.idle_cpu_percent, "released": self.released, "lost": self.lost,
                "not_opened": self.not_opened, "failed": self.failed, "opening_s": self.opening_s,
                "refused_503": self.refused,
                "decided": self.decided,
                "decisions_per_s": self.decided / self.deciding_s if self.deciding_s else 0.0,
                "server_release_p50_ms": percentile(self.server_lags, 0.5) * 1000,
                "server_release_p99_ms": percentile(self.server_lags, 0.99) * 1000,
                "client_release_p50_ms": percentile(self.client_lags, 0.5) * 1000,
                "client_release_p99_ms": percentile(self.client_lags, 0.99) * 1000}


async def exchange(conn: Conn, raw: bytes) -> tuple[int, float | None, Any]:
    """One request: its status, its Retry-After in seconds (None without one) and its JSON body."""
    conn.writer.write(raw)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    length, retry_after = 0, None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"retry-after":
            retry_after = float(value)
    body = await conn.reader.readexactly(length)
    return int(head[9:12]), retry_after, json.loads(body) if body else None


def retry_delay(retry_after: float | None) -> float:
    """Not before the server's Retry-After, and spread over half of it again, so agents refused
    together do not return together."""
    wait = retry_after if retry_after is not None else 2.0
    return wait * random.uniform(1.0, 1.5)


async def _get(port: int, path: str, headers: dict[str, str], *, within: float = 60.0) -> Any:
    async def ask() -> Any:
        conn = await Conn.open(port)
        try:
            while True:
                status, retry_after, answer = await exchange(conn, render("GET", path, headers))
                if status != 503:  # busy: asked again after Retry-After
                    break
                await asyncio.sleep(retry_delay(retry_after))
            if status != 200:
                raise SystemExit(f"GET {path} answered {status}: {answer}")
            return answer
        finally:
            conn.close()

    return await asyncio.wait_for(ask(), within)


async def held_requests(port: int, headers: dict[str, str], count: int, pid: int, *, reviewers: int,
                        pace_per_s: float | None, time_limit: float, arrival_per_s: float) -> HoldsResult:
    """Open `count` holds at `arrival_per_s`, then decide them: at `pace_per_s`, or as fast as
    `reviewers` can click; within `time_limit` seconds whatever happens.

    The time is shared out ahead: opening gets what `count` arrivals need and half as much again
    (at most 40 % of the limit), collecting the answers keeps its last 15 s, and deciding has the
    rest; a pace the server cannot keep shows as holds left undecided, counted lost."""
    result = HoldsResult(count=count, rss_idle_mb=rss_mb(pid))
    clicked: dict[str, float] = {}
    arrived: dict[str, float] = {}
    holding: dict[int, str] = {}  # agent → the approval it holds on, once its first hold is sent
    create = render("POST", "/v1/approvals", headers, BODY)
    began = time.perf_counter()
    measuring, collecting = 1.0 + 5.0 + 2.0, 15.0  # settle, idle CPU, and a margin for the state reads
    opening_budget = min(count / arrival_per_s * 1.5 + 10, time_limit * 0.4)
    deciding_budget = time_limit - opening_budget - measuring - collecting
    if deciding_budget <= 10:
        raise SystemExit(f"--time-limit {time_limit:.0f} s is too short for {count:,} holds at these rates")
    opened_by = began + opening_budget

    async def call(conn: Conn, raw: bytes) -> tuple[int, Any]:
        # A request refused because the server is busy (503, api/admission.py) stored nothing: it is
        # sent again after Retry-After, with jitter. Bounded by the caller's deadline, not by a count.
        while True:
            status, retry_after, answer = await exchange(conn, raw)
            if status != 503:
                return status, answer
            result.refused += 1
            await asyncio.sleep(retry_delay(retry_after))

    async def agent(n: int) -> None:
        # Each agent connects when it is about to ask: the server closes a connection that sends
        # nothing within its header timeout (api/serving.py), as it would an idle client's.
        conn = await Conn.open(port)
        try:
            status, approval = await call(conn, create)
            while status in (200, 202) and approval["status"] == "pending":
                holding[n] = approval["approvalId"]
                status, approval = await call(
                    conn, render("GET", f"/v1/approvals/{approval['approvalId']}?waitMs={CAP_MS}", headers))
            if status == 200 and approval["status"] == "rejected":
                arrived[approval["approvalId"]] = time.perf_counter()
            elif status not in (200, 202):
                result.failed += 1
        except (OSError, asyncio.IncompleteReadError):
            result.failed += 1
        finally:
            conn.close()

    # Opening: one agent every 1/arrival_per_s seconds, on schedule, until all are held or time is up.
    tasks: dict[int, asyncio.Task[None]] = {}
    for n in range(count):
        due = began + n / arrival_per_s
        if due >= opened_by:
            break
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks[n] = asyncio.create_task(agent(n))
    held = 0
    while time.perf_counter() < opened_by:
        with contextlib.suppress(TimeoutError):
            held = (await _get(port, "/bench/state", headers, within=max(1.0, opened_by - time.perf_counter())))[
                "held"]
        if held >= count or all(task.done() for task in tasks.values()):
            break
        await asyncio.sleep(min(1.0, max(0.0, opened_by - time.perf_counter())))
    result.opening_s = time.perf_counter() - began
    # Agents not holding yet are given up on (and their load with them): what is measured next is
    # holds that wait, not creation.
    late = [n for n in tasks if n not in holding]
    for n in late:
        tasks[n].cancel()
    result.not_opened = count - len(tasks) + len(late)
    if result.not_opened:
        print(f"  {count - result.not_opened:,} of {count:,} holds opened in {result.opening_s:.0f} s; "
              "deciding those", flush=True)

    await asyncio.sleep(1.0)
    result.rss_held_mb = rss_mb(pid)
    cpu = cpu_seconds(pid)
    await asyncio.sleep(5.0)
    result.idle_cpu_percent = (cpu_seconds(pid) - cpu) / 5.0 * 100

    # Deciding: the approvals the agents hold, by `reviewers` at once, until done or out of time.
    queue = [holding[n] for n in sorted(holding)]
    queue.reverse()
    pause = reviewers / pace_per_s if pace_per_s else 0.0
    deciding = time.perf_counter()
    decided_by = deciding + deciding_budget

    async def reviewer() -> None:
        conn = await Conn.open(port)
        try:
            while queue and time.perf_counter() < decided_by:
                approval_id = queue.pop()
                clicked[approval_id] = time.perf_counter()
                status, answer = await call(conn, render("POST", f"/bench/decide/{approval_id}", {}))
                # After a 503 the click is sent again; a first attempt may have been recorded before the
                # refusal (its answer lost), so the second may find the request already decided.
                assert status == 200 and (answer["outcome"] == "decided" or result.refused), answer
                result.decided += 1
                if pause:
                    await asyncio.sleep(pause)
        finally:
            conn.close()

    done, unfinished = await asyncio.wait([asyncio.create_task(reviewer()) for _ in range(reviewers)],
                                          timeout=deciding_budget)
    for task in unfinished:
        task.cancel()
    for task in done:
        task.result()  # a reviewer's failure is the bench's, and says so
    result.deciding_s = time.perf_counter() - deciding
    if queue or unfinished:
        print(f"  {len(queue):,} holds left undecided at the deciding deadline", flush=True)

    # Collecting: every answer that comes back before the stage's limit.
    remaining = max(collecting, time_limit - (time.perf_counter() - began))
    open_agents = [task for task in tasks.values() if not task.done()]
    if open_agents:
        _done, stuck = await asyncio.wait(open_agents, timeout=remaining)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
    result.released = len(arrived)
    result.lost = count - len(arrived)
    result.client_lags = [arrived[i] - clicked[i] for i in arrived if i in clicked]
    result.server_lags = await _get(port, "/bench/releases", headers, within=30)
    return result
