"""Review messages per second to a Slack that answers at once: `bench/run.py --only messages`,
or on its own `.venv/bin/python bench/messages.py [--requests 2000] [--budget] [--threshold 10]
[--backlog]`.

A Cheqpoint server (SQLite, the outbox worker in-process) with Slack configured, pointed at the test
suite's fake Slack run as its own process with NO rate limit (`bench/slack_server.py … unlimited`).
`--requests` requests are filed at 32 connections; each is sent to review, so each gets a
chat.postMessage from the outbox's post job. The figure is the rate at which those calls arrive at
the fake, from the first to the last, and the server's CPU time per message over that window.

Why Slack's budget is lifted by default: the product keeps Slack's own limit for chat.postMessage
(about one message a second per channel, `bot.budget.POST_MESSAGE`) before Slack has to. Kept on,
posting runs at that pace whatever our CPU can do, and the queue it leaves behind is deep enough
for digests to take the requests over, as designed (issue 13). The question here is what our side
can do when the limit is not what paces it, so the server this stage starts (`serve`, below) lifts
that one rate in its own process; `--budget` keeps it, to see the product as deployed. Digests are
left at the product's threshold unless `--threshold` says otherwise (the stage in bench/run.py sets it
above the number filed: see `stage`) and counted: a deep queue shows as digests, not messages.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.intake import connection_key, free_port, load  # noqa: E402
from bench.slack_server import TOKEN  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

TARGET = 200.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads


def _wait_up(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(400):
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{what} did not start")


def _spawn(args: list[str], env: dict[str, str] | None = None, code: Path = ROOT) -> subprocess.Popen[bytes]:
    # The children run this tree's code (or `code`'s), whatever the environment's install points at.
    path = os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": path, **(env or {})})


def measure(workdir: Path, requests: int, concurrency: int = 32, *, budget: bool = False,
            threshold: int | None = None, time_limit: float = 120.0, code: Path = ROOT,
            backlog: bool = False) -> dict[str, Any]:
    """`backlog`: the server's outbox worker waits until every request is filed, then posts them all;
    the figures are then posting's alone (no intake beside it on the process's CPU)."""
    slack_port, port = free_port(), free_port()
    gate = workdir / f"gate-{time.monotonic_ns()}"
    slack = _spawn([str(ROOT / "bench" / "slack_server.py"), str(slack_port), "unlimited"])
    slack_base = f"http://127.0.0.1:{slack_port}"
    server = None
    try:
        _wait_up(f"{slack_base}/bench/stats", slack, "the fake Slack")
        url = f"sqlite+aiosqlite:///{workdir / f'messages-{time.monotonic_ns()}.db'}"
        headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
        env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "bench-signing-secret",
               "SLACK_API_URL": f"{slack_base}/api/", "CHEQPOINT_REVIEW_CHANNEL": FakeSlack.REVIEW_CHANNEL,
               "CHEQPOINT_APPROVERS": "UBENCH", "CHEQPOINT_BENCH_SLACK_BUDGET": "1" if budget else "",
               "CHEQPOINT_BENCH_CODE": str(code), "CHEQPOINT_BENCH_HOLD": str(gate) if backlog else ""}
        if threshold is not None:
            env["CHEQPOINT_SLACK_DIGEST_THRESHOLD"] = str(threshold)
        server = _spawn([str(Path(__file__).resolve()), "serve", url, str(port)], env, code)
        base = f"http://127.0.0.1:{port}"
        _wait_up(f"{base}/healthz", server, "the Cheqpoint server")
        cpu_before, began = cpu_seconds(server.pid), time.monotonic()
        filed, _latencies = asyncio.run(load(base, headers, requests, concurrency))
        # Until every request has its post (or nothing moved for 10 s; digests post fewer), polling
        # the fake's cheap counters; what reviewers see is read once at the end.
        seen, moved_at = httpx.get(f"{slack_base}/bench/posts").json(), time.monotonic()
        # From here only the outbox works: its CPU per message, without intake's share.
        filed_cpu, filed_posts, filed_at = cpu_seconds(server.pid), seen["post_arrivals"], time.time()
        if backlog:
            assert filed_posts == 0, "the worker posted before the backlog was filed"
            gate.touch()
        while seen["post_arrivals"] < requests and time.monotonic() - began < time_limit:
            time.sleep(0.5)
            now = httpx.get(f"{slack_base}/bench/posts").json()
            if (now["post_arrivals"], now["calls"]) != (seen["post_arrivals"], seen["calls"]):
                moved_at = time.monotonic()
            seen = now
            if time.monotonic() - moved_at > 10:
                break
        cpu_after = cpu_seconds(server.pid)
        cpu = cpu_after - cpu_before
        seen = httpx.get(f"{slack_base}/bench/stats", timeout=30).json()
    finally:
        for process in (server, slack):
            if process is not None:
                process.terminate()
                process.wait()
    posts = seen["post_arrivals"]
    after = posts - filed_posts  # posted once intake was over
    after_span = (seen["last_post"] - filed_at) if after > 0 else float("nan")
    span = (seen["last_post"] - seen["first_post"]) if posts > 1 else float("nan")
    return {"requests": requests, "filed_per_s": filed, "post_calls": posts, "review_messages": seen["review_messages"],
            "digests": seen["digests"], "visible": seen["visible"], "calls": seen["calls"],
            "posts_per_s": (posts - 1) / span if posts > 1 and span > 0 else float("nan"),
            "post_span_s": span, "server_cpu_ms_per_request": 1000 * cpu / requests,
            "posted_after_intake": after, "after_intake_posts_per_s": after / after_span if after > 0 else float("nan"),
            "after_intake_cpu_ms_per_post": 1000 * (cpu_after - filed_cpu) / after if after > 0 else float("nan"),
            "backlog": backlog, "load_average": os.getloadavg()[0]}


def stage(table: Any, workdir: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The `messages` stage of bench/run.py: one row against the target, the rest reported.

    The digest threshold is set above the number filed: filing at 32 connections outruns posting
    from the first moment, so at the product's threshold (10) the waiting queue passes it within
    the first second and digests take the requests over, as designed. The figure asked for is
    individual messages posted per second, so each request here keeps its own.

    The target row is posting from a backlog (every request filed, then the worker let go): once
    posting keeps up with intake, a run that files while posting can post no faster than requests
    are filed, so its rate measures intake; that run's figures are reported beside it."""
    backlog = measure(workdir, args.messages, args.concurrency, threshold=args.messages + 1, backlog=True)
    measured = measure(workdir, args.messages, args.concurrency, threshold=args.messages + 1)
    results["messages"] = {"backlog": backlog, "while_filing": measured}
    rate = backlog["posts_per_s"]
    table.add("review messages per second to an instant Slack (from a backlog)", rate, "≥ 200",
              rate >= TARGET and backlog["review_messages"] == backlog["requests"])
    table.add("review messages: server CPU per message (from a backlog)",
              backlog["after_intake_cpu_ms_per_post"], unit=" ms")
    table.add("review messages per second while requests are filed", measured["posts_per_s"])
    table.add("review messages: posted after intake ended, per second", measured["after_intake_posts_per_s"])
    table.add("review messages: server CPU per message after intake ended",
              measured["after_intake_cpu_ms_per_post"], unit=" ms")


def serve(database_url: str, port: int) -> None:
    """The bench's Cheqpoint server (bench/servers.py), Slack's chat.postMessage budget lifted unless
    CHEQPOINT_BENCH_SLACK_BUDGET is set: only the fake Slack's answers pace posting then."""
    import runpy

    code = os.environ.get("CHEQPOINT_BENCH_CODE") or str(ROOT)  # another checkout's code: before/after
    sys.path.insert(0, code)
    if not os.environ.get("CHEQPOINT_BENCH_SLACK_BUDGET"):
        from bot import budget

        budget.RATES["chat.postMessage"] = budget.Rate(1_000_000.0, 1_000_000, per_channel=True)
    if os.environ.get("CHEQPOINT_BENCH_HOLD"):
        _hold_the_worker(Path(os.environ["CHEQPOINT_BENCH_HOLD"]))
    sys.argv = [str(Path(code) / "bench" / "servers.py"), "cheqpoint", database_url, str(port)]
    runpy.run_path(sys.argv[0], run_name="__main__")


def _hold_the_worker(gate: Path) -> None:
    """The outbox worker of this process starts only once `gate` exists (the backlog is filed)."""
    from api.outbox.worker import Worker

    run = Worker.run

    async def held(self: Worker) -> None:
        # A file polled, not an event: the bench process that opens the gate is another process.
        while not gate.exists() and not self._stopping:  # noqa: ASYNC110, ASYNC240
            await asyncio.sleep(0.05)
        await run(self)

    Worker.run = held  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--budget", action="store_true", help="keep Slack's budget for chat.postMessage (1/s)")
    parser.add_argument("--threshold", type=int, help="CHEQPOINT_SLACK_DIGEST_THRESHOLD (the product's default: 10)")
    parser.add_argument("--backlog", action="store_true",
                        help="file every request first, then let the worker post them (posting's figures alone)")
    parser.add_argument("--code", type=Path, default=ROOT, help="serve this checkout's code (e.g. /work/base)")
    args = parser.parse_args()
    measured = measure(Path(tempfile.mkdtemp(prefix="cheqpoint-messages-")), args.requests, args.concurrency,
                       budget=args.budget, threshold=args.threshold, code=args.code.resolve(), backlog=args.backlog)
    for key, value in measured.items():
        print(f"{key}: {value:,.2f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
