"""The performance benchmark: `make bench` (or `.venv/bin/python bench/run.py`).

Prints one table: each figure, its target, and whether it was met. Every ratio is taken against
references measured in the same run on the same machine: a bare FastAPI endpoint that parses the
same body and does one naive SQLAlchemy insert (`naive`), and the same endpoint doing no database work
(`no-DB ceiling`). Each server is its own process on 127.0.0.1 with a fresh SQLite file.

    intake        maximum rate at 32 connections (wrk when installed), then p99 at half that rate,
                  open-loop at a fixed rate (`wire.open_loop`: latency from when each request was due)
    velocity      the same with a policy that reads the Connection's and customer's totals on every request
    verified      the maximum rate with Stripe configured, so every refund is verified against Stripe (the
                  test suite's fake, served from this process) before review: the cost of verifying
    holds         10,000 synchronous holds arriving at --arrival a second, all held at once, then paced
                  decisions: memory, the server's idle CPU while they wait, release delay timed in
                  the server, none lost; every phase bounded by --time-limit
    burst         1,000 holds, then 1,000 decisions by eight reviewers at once: click → answer at the agent
    callback      click (approve) → Stripe refund (the fake) → `approval.executed` callback received
    soak          fixed-rate intake at half the maximum for --soak seconds: memory growth, errors, jobs left

Every stage is bounded in count and time. Results on a shared two-core machine are noisy: compare
figures from the same run, and run twice before believing a difference under 10 %.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flows
import holds
import intake
import messages
from intake import BODY, connection_key, fake_stripe, load_with_wrk, start
from wire import Conn, open_loop, percentile, render

HERE = Path(__file__).resolve().parent
VELOCITY_POLICY = HERE / "velocity.yaml"
STAGES = ("intake", "velocity", "verified", "holds", "burst", "callback", "messages", "soak")


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.failed = 0

    def add(self, figure: str, value: float, target: str = "", ok: bool | None = None, unit: str = "") -> None:
        shown = "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else \
            f"{value:,.2f}".rstrip("0").rstrip(".") + unit
        verdict = "" if ok is None else ("pass" if ok else "FAIL")
        self.failed += ok is False
        self.rows.append((figure, shown, target, verdict))
        print(f"  {figure}: {shown} {target} {verdict}", flush=True)

    def render(self) -> str:
        header = ("figure", "measured", "target", "")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(4)]
        line = lambda row: "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"  # noqa: E731
        return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                          *(line(row) for row in self.rows)])


@contextlib.contextmanager
def server(kind: str, workdir: Path, name: str, env: dict[str, str] | None = None) -> Iterator[tuple[Any, int,
                                                                                                    dict[str, str]]]:
    url = f"sqlite+aiosqlite:///{workdir / (name + '.db')}"
    headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"} if kind == "cheqpoint" else {}
    process, base = start(kind, url, env)
    try:
        yield process, int(base.rsplit(":", 1)[1]), headers
    finally:
        process.terminate()
        process.wait()


async def closed_loop(port: int, raw: bytes, seconds: float, concurrency: int) -> dict[str, float]:
    """Without wrk: `concurrency` connections each sending as soon as the last answer came."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def connection() -> None:
        conn = await Conn.open(port)
        while time.perf_counter() < stop:
            began = time.perf_counter()
            await conn.request(raw)
            latencies.append(time.perf_counter() - began)
        conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return {"requests_per_s": len(latencies) / (time.perf_counter() - began),
            "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}


def maximum(port: int, headers: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    if shutil.which("wrk"):
        return load_with_wrk(f"http://127.0.0.1:{port}", headers, args.seconds, args.concurrency)
    raw = render("POST", "/v1/approvals", headers, BODY)
    asyncio.run(closed_loop(port, raw, 2, args.concurrency))  # warm up
    return asyncio.run(closed_loop(port, raw, args.seconds, args.concurrency))


def intake_stage(table: Table, workdir: Path, args: argparse.Namespace, results: dict[str, Any],
                 name: str, env: dict[str, str] | None) -> None:
    with server("cheqpoint", workdir, name, env) as (_process, port, headers):
        top = maximum(port, headers, args)
        raw = render("POST", "/v1/approvals", headers, BODY)
        fixed = asyncio.run(open_loop(port, raw, top["requests_per_s"] / 2, args.seconds))
    results[name] = {"max": top, "half_rate": top["requests_per_s"] / 2, "errors": fixed.errors,
                     "half_p50_ms": percentile(fixed.latencies, 0.5) * 1000,
                     "half_p99_ms": percentile(fixed.latencies, 0.99) * 1000}
    label = "async intake" if name == "intake" else "intake, velocity rule"
    table.add(f"{label}: max requests/s ({args.concurrency} connections)", top["requests_per_s"])
    if name == "intake":
        naive, ceiling = results["naive"]["requests_per_s"], results["nodb"]["requests_per_s"]
        table.add("async intake ÷ naive insert", top["requests_per_s"] / naive, "≥ 3", top["requests_per_s"] /
                  naive >= 3, "×")
        table.add("async intake ÷ no-DB ceiling", top["requests_per_s"] / ceiling, "≥ 0.35",
                  top["requests_per_s"] / ceiling >= 0.35)
    else:
        base = results["intake"]["max"]["requests_per_s"]
        table.add("velocity ÷ async intake (max rate)", top["requests_per_s"] / base, "≥ 0.8",
                  top["requests_per_s"] / base >= 0.8)
    p99 = results[name]["half_p99_ms"]
    table.add(f"{label}: p99 at half max ({top['requests_per_s'] / 2:.0f}/s, fixed rate)", p99, "< 20 ms",
              p99 < 20 and not fixed.errors, " ms")


def verified_stage(table: Table, workdir: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    with fake_stripe() as stripe_env, server("cheqpoint", workdir, "verified", stripe_env) as (_process, port,
                                                                                              headers):
        top = maximum(port, headers, args)
    results["verified"] = {"max": top}
    table.add("verified against Stripe ÷ async intake (max rate)",
              top["requests_per_s"] / results["intake"]["max"]["requests_per_s"])


def holds_stage(table: Table, workdir: Path, args: argparse.Namespace, results: dict[str, Any], burst: bool) -> None:
    count = args.burst if burst else args.holds
    if count <= 0:
        return
    with server("cheqpoint", workdir, "burst" if burst else "holds") as (process, port, headers):
        held = asyncio.run(holds.held_requests(
            port, headers, count, process.pid, reviewers=8, pace_per_s=None if burst else args.pace,
            time_limit=args.time_limit, arrival_per_s=args.arrival))
    figures = held.figures()
    results["burst" if burst else "holds"] = figures
    if burst:
        table.add(f"burst: {count:,} decisions by 8 reviewers, click → hold answered p99",
                  figures["client_release_p99_ms"], "< 500 ms", figures["client_release_p99_ms"] < 500, " ms")
        table.add("burst: decisions per second (one process)", figures["decisions_per_s"])
        table.add("burst: holds lost", held.lost, "0", held.lost == 0)
        table.add("burst: of which never opened / failed", held.not_opened + held.failed)
        return
    opened = f"{count - held.not_opened:,} of {count:,}" if held.not_opened else f"{count:,}"
    table.add(f"holds: RSS with {opened} held", figures["rss_held_mb"], "< 300 MB",
              figures["rss_held_mb"] < 300 and not held.not_opened, " MB")
    table.add(f"holds: server CPU while {opened} wait idle", figures["idle_cpu_percent"], "< 5 %",
              figures["idle_cpu_percent"] < 5, " %")
    table.add("holds: release after decision p99 (server-timed)", figures["server_release_p99_ms"], "< 50 ms",
              figures["server_release_p99_ms"] < 50, " ms")
    table.add("holds: release after decision p50 (server-timed)", figures["server_release_p50_ms"], unit=" ms")
    table.add(f"holds: decisions per second (asked {args.pace:g})", figures["decisions_per_s"])
    table.add("holds: lost", held.lost, "0", held.lost == 0)
    table.add("holds: of which never opened (creation past its deadline)", held.not_opened)
    table.add("holds: of which failed (connection lost or an unexpected answer)", held.failed)
    table.add(f"holds: seconds to open {count:,} at {args.arrival:g}/s", held.opening_s)
    table.add("holds: requests refused 503 (busy) and sent again", held.refused)


def callback_stage(table: Table, workdir: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    with fake_stripe() as stripe_env, flows.receiver() as (arrivals, callback_url), \
            server("cheqpoint", workdir, "callback", {**stripe_env, "CHEQPOINT_CALLBACK_ALLOW_PRIVATE": "true"}) \
            as (_process, port, headers):
        body = {**BODY, "details": {**BODY["details"], "amount_cents": 100}}
        measured = asyncio.run(flows.decision_to_callback(port, headers, body, arrivals, callback_url,
                                                          args.callbacks))
    results["callback"] = measured
    table.add("decision → Stripe → callback p50", measured["p50_ms"], "< 100 ms",
              measured["p50_ms"] < 100 and not measured["failed"], " ms")


def soak_stage(table: Table, workdir: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    rate = results.get("intake", {}).get("half_rate") or args.soak_rate
    with server("cheqpoint", workdir, "soak") as (process, port, headers):
        raw = render("POST", "/v1/approvals", headers, BODY)

        async def state() -> dict[str, int]:
            conn = await Conn.open(port)
            try:
                return (await conn.call(render("GET", "/bench/state", {})))[1]
            finally:
                conn.close()

        soaked = asyncio.run(flows.soak(port, raw, rate, args.soak, process.pid, state))
    results["soak"] = soaked
    table.add(f"soak {args.soak:.0f} s at {rate:.0f}/s: RSS growth", soaked["rss_growth_percent"], "< 10 %",
              soaked["rss_growth_percent"] < 10, " %")
    table.add("soak: errors", soaked["errors"], "0", soaked["errors"] == 0)
    table.add("soak: jobs left due", soaked["jobs_left"], "0", soaked["jobs_left"] == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each rate measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--holds", type=int, default=10_000)
    parser.add_argument("--pace", type=float, default=400, help="decisions per second on the held requests")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--callbacks", type=int, default=30)
    parser.add_argument("--messages", type=int, default=2000, help="requests filed for the review-message stage")
    parser.add_argument("--soak", type=float, default=20, help="soak seconds (600: the ten-minute soak)")
    parser.add_argument("--soak-rate", type=float, default=200, help="used when the intake stage did not run")
    parser.add_argument("--arrival", type=float, default=150,
                        help="holds stages: agents arriving per second, open loop (well under the intake maximum)")
    parser.add_argument("--time-limit", type=float, default=360, help="seconds allowed to each holds stage")
    parser.add_argument("--only", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    stages = set(args.only.split(","))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="cheqpoint-bench-"))
    table, results = Table(), {}
    print(f"load from {'wrk' if shutil.which('wrk') else 'the built-in closed-loop client'}; "
          f"{os.cpu_count()} cores", flush=True)

    if stages & {"intake", "velocity"}:
        for kind in ("nodb", "naive"):
            with server("nodb" if kind == "nodb" else "baseline", workdir, kind) as (_process, port, _headers):
                results[kind] = maximum(port, {}, args)
        table.add("reference: no-DB ceiling, requests/s", results["nodb"]["requests_per_s"])
        table.add("reference: naive insert, requests/s", results["naive"]["requests_per_s"])
    steps: list[tuple[str, Callable[[], None]]] = [
        ("intake", lambda: intake_stage(table, workdir, args, results, "intake", None)),
        ("velocity", lambda: intake_stage(table, workdir, args, results, "velocity",
                                          {"CHEQPOINT_POLICY_FILE": str(VELOCITY_POLICY)})),
        ("verified", lambda: verified_stage(table, workdir, args, results)),
        ("holds", lambda: holds_stage(table, workdir, args, results, burst=False)),
        ("burst", lambda: holds_stage(table, workdir, args, results, burst=True)),
        ("callback", lambda: callback_stage(table, workdir, args, results)),
        ("messages", lambda: messages.stage(table, workdir, args, results)),
        ("soak", lambda: soak_stage(table, workdir, args, results)),
    ]
    for name, step in steps:
        if name in stages and (name not in ("velocity", "verified") or "intake" in results):
            print(f"-- {name}", flush=True)
            step()
    print()
    print(table.render())
    print(f"\n{len(table.rows)} figures, {table.failed} below target")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


holds.BODY.update(BODY)
_ = intake  # run.py reuses intake.py's server start-up, wrk driver and fake Stripe

if __name__ == "__main__":
    main()
