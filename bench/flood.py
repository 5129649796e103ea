"""Slack flood benchmark: `make bench` (or `.venv/bin/python bench/flood.py`).

Two questions, against the test suite's fake Slack enforcing Slack's limits (chat.postMessage about
one message per second per channel with a short burst, the other methods by tier, 429 with
Retry-After beyond), Cheqpoint on SQLite, load from 32 concurrent connections:

1. Does Slack slow intake? Two Cheqpoint servers run side by side, one with Slack configured and
   one without, each warmed up first. They are loaded in alternating rounds (A B, B A, A B, …, so
   neither always goes first), each round waiting until the other server's outbox has nothing due,
   so neither is measured while the other's leftover work shares the cores. The figures are the
   median rate of each and the ratio of the medians (the median of the per-pair ratios beside it).
   A single round of a few seconds on a shared machine can vary by a factor of two; the median of many
   much less.
2. Does a flood reach reviewers? A fresh server with Slack configured takes 500 requests at once;
   then how many are visible to reviewers (in their own message or a digest) after 10, 30 and 60 s,
   and how many Slack calls were answered 429.

Cheqpoint, the fake Slack and the load generator are separate processes sharing the machine's cores.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.intake import connection_key, free_port, load, start  # noqa: E402
from bench.slack_server import TOKEN  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

WATCH_AT = (10, 30, 60)


class Server:
    """One Cheqpoint process on its own SQLite file, and the Connection key the load uses."""

    def __init__(self, workdir: Path, name: str, slack: str | None) -> None:
        url = f"sqlite+aiosqlite:///{workdir / (name + '.db')}"
        self.headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
        env = {} if slack is None else {
            "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "bench-signing-secret",
            "SLACK_API_URL": f"{slack}/api/", "CHEQPOINT_REVIEW_CHANNEL": FakeSlack.REVIEW_CHANNEL,
            "CHEQPOINT_APPROVERS": "UBENCH"}
        self.process, self.base = start("cheqpoint", url, env)
        self.rates: list[float] = []

    def flood(self, requests: int, concurrency: int) -> float:
        rate, _ = asyncio.run(load(self.base, self.headers, requests, concurrency))
        return rate

    def wait_idle(self, limit: float = 10.0) -> None:
        """Until no outbox job is due (work the last round left behind), `limit` seconds at most."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/bench/state", timeout=5).json()["jobs_due"] == 0:
                    return
            except httpx.HTTPError:  # too busy to answer: not idle
                pass
            time.sleep(0.2)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def start_fake_slack() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "slack_server.py"), str(port)], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/bench/stats", timeout=0.5).raise_for_status()
            return process, base
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the fake Slack did not start")


def stats(slack: str) -> dict[str, int]:
    return httpx.get(f"{slack}/bench/stats", timeout=5).json()


def fake_slack(stack: ExitStack) -> str:
    process, base = start_fake_slack()
    stack.callback(lambda: (process.terminate(), process.wait()))
    return base


def side_by_side(workdir: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    with ExitStack() as stack:
        servers = {"without": Server(workdir, "without", None),
                   "with": Server(workdir, "with", fake_slack(stack))}
        for server in servers.values():
            stack.callback(server.close)
            server.flood(args.warmup, args.concurrency)
        for round_ in range(args.rounds):
            order = ("without", "with") if round_ % 2 == 0 else ("with", "without")
            for name in order:
                for server in servers.values():
                    server.wait_idle()
                servers[name].rates.append(servers[name].flood(args.round_requests, args.concurrency))
        return {name: server.rates for name, server in servers.items()}


def flood_reaches_reviewers(workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    with ExitStack() as stack:
        slack = fake_slack(stack)
        server = Server(workdir, "flood", slack)
        stack.callback(server.close)
        began = time.monotonic()
        result: dict[str, float] = {"requests_per_s": server.flood(args.requests, args.concurrency)}
        for at in WATCH_AT:
            time.sleep(max(0.0, began + at - time.monotonic()))
            result[f"visible_at_{at}s"] = stats(slack)["visible"]
        seen = stats(slack)
        result.update(post_calls=seen["post_calls"], calls=seen["calls"], answered_429=seen["rate_limited"],
                      messages=seen["messages"])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="the flood watched until it reaches reviewers")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds for the intake rates")
    parser.add_argument("--round-requests", type=int, default=300, help="requests per server per round")
    parser.add_argument("--warmup", type=int, default=200, help="requests per server before the rounds")
    args = parser.parse_args()
    os.environ.pop("SLACK_APP_TOKEN", None)
    # The servers run this tree's code, whatever the environment's install points at.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    workdir = Path(tempfile.mkdtemp(prefix="cheqpoint-flood-"))

    rates = side_by_side(workdir, args)
    plain, slacked = statistics.median(rates["without"]), statistics.median(rates["with"])
    pairs = statistics.median(b / a for a, b in zip(rates["without"], rates["with"], strict=True))
    watched = flood_reaches_reviewers(workdir, args)

    def listing(values: list[float]) -> str:
        return " ".join(f"{v:.0f}" for v in values)

    rows = [
        ("intake rounds", f"{args.rounds} × {args.round_requests} requests per server, alternating, "
                          f"{args.concurrency} connections"),
        ("intake without Slack (req/s, median)", f"{plain:.1f}  [{listing(rates['without'])}]"),
        ("intake with Slack (req/s, median)", f"{slacked:.1f}  [{listing(rates['with'])}]"),
        ("ratio with / without Slack (of medians)", f"{slacked / plain:.2f}"),
        ("ratio with / without Slack (median of rounds)", f"{pairs:.2f}"),
        ("flood", f"{args.requests} requests at {args.concurrency} connections, "
                  f"{watched['requests_per_s']:.1f} req/s"),
        *((f"requests visible (own message or digest) after {at} s", str(watched[f"visible_at_{at}s"]))
          for at in WATCH_AT),
        ("review messages and digests in the channel", str(watched["messages"])),
        ("Slack calls (chat.postMessage)", f"{watched['calls']} ({watched['post_calls']})"),
        ("calls answered 429", str(watched["answered_429"])),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
