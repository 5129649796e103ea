"""Slack flood benchmark: `make bench` (or `.venv/bin/python bench/flood.py`).

500 requests flooded at Cheqpoint (SQLite, 32 concurrent connections) with Slack configured, against
the test suite's fake Slack enforcing Slack's limits (chat.postMessage about one message per second
per channel with a short burst, 429 + Retry-After beyond), and the same flood without Slack, side by
side (alternating rounds, median taken). It reports the intake rate of each and their ratio, how
many requests became visible to reviewers (in their own message or a digest) after 10, 30 and 60 s, and how
many Slack calls were answered 429.

Cheqpoint, the fake Slack and the load generator are three processes sharing the machine's cores.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.intake import connection_key, free_port, load, start  # noqa: E402
from bench.slack_server import TOKEN  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

WATCH_AT = (10, 30, 60)


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


def flood(workdir: Path, name: str, args: argparse.Namespace, *, slack: str | None, watch: bool) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{workdir / (name + '.db')}"
    headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
    env = {} if slack is None else {
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "bench-signing-secret", "SLACK_API_URL": f"{slack}/api/",
        "CHEQPOINT_REVIEW_CHANNEL": FakeSlack.REVIEW_CHANNEL, "CHEQPOINT_APPROVERS": "UBENCH"}
    process, base = start("cheqpoint", url, env)
    try:
        began = time.monotonic()
        rate, _ = asyncio.run(load(base, headers, args.requests, args.concurrency))
        result: dict[str, float] = {"requests_per_s": round(rate, 1)}
        if slack is not None and watch:
            for at in WATCH_AT:
                time.sleep(max(0.0, began + at - time.monotonic()))
                result[f"visible_at_{at}s"] = stats(slack)["visible"]
            seen = stats(slack)
            result.update(post_calls=seen["post_calls"], answered_429=seen["rate_limited"], messages=seen["messages"])
        return result
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for the intake rates")
    args = parser.parse_args()
    os.environ.pop("SLACK_APP_TOKEN", None)
    # The servers run this tree's code, whatever the environment's install points at.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    workdir = Path(tempfile.mkdtemp(prefix="cheqpoint-flood-"))

    without, with_slack, watched = [], [], {}
    for round_ in range(args.rounds):
        without.append(flood(workdir, f"plain-{round_}", args, slack=None, watch=False)["requests_per_s"])
        fake, slack = start_fake_slack()
        try:
            last = round_ == args.rounds - 1
            result = flood(workdir, f"slack-{round_}", args, slack=slack, watch=last)
            with_slack.append(result["requests_per_s"])
            if last:
                watched = result
        finally:
            fake.terminate()
            fake.wait()

    plain, slacked = statistics.median(without), statistics.median(with_slack)
    rows = [
        ("requests flooded", f"{args.requests} at {args.concurrency} connections"),
        ("intake without Slack (req/s, median)", f"{plain:.1f}  {without}"),
        ("intake with Slack (req/s, median)", f"{slacked:.1f}  {with_slack}"),
        ("ratio with / without Slack", f"{slacked / plain:.2f}"),
        *((f"requests visible (own message or digest) after {at} s", str(watched.get(f"visible_at_{at}s")))
          for at in WATCH_AT),
        ("review messages and digests in the channel", str(watched.get("messages"))),
        ("chat.postMessage calls", str(watched.get("post_calls"))),
        ("calls answered 429", str(watched.get("answered_429"))),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
