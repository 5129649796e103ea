"""Intake benchmark: `make bench` (or `.venv/bin/python bench/intake.py`).

1. Async intake throughput and latency at 32 concurrent connections, Cheqpoint against a bare
   FastAPI endpoint that parses the same body and does one insert, both on SQLite, both measured in
   this run; the ratio is what to quote. Then Cheqpoint again with Stripe configured, so every
   request is verified against Stripe before review (Stripe answered by the test suite's fake,
   served from this process); its rate against Cheqpoint's without verification is the cost of
   verifying.
2. 1,000 concurrent synchronous holds, each released by a decision (made in the server process, as
   a Slack click is): the server's resident memory idle and while holding them, and how long after
   the decision's timestamp each hold let go — measured in the server (`server_release_*`) and as
   the agent saw it arrive (`client_release_*`, which adds this process's own delays in juggling a
   thousand connections; holds that reached the 60 s cap re-hold with `GET ?waitMs=`, as agents do).

Each server runs in its own process. Load comes from `wrk` when it is installed (`apt-get install
wrk`; `make bench` installs it on Debian), since a Python load generator spends as much CPU as the
server it measures; without it, from httpx in this process (the figures then understate both servers).
Figures depend on the machine: its cores are shared by the load generator and the server.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BODY = {
    "action": "issue_refund",
    "summary": "Refund duplicate charge ch_3NxYz for $349.00",
    "details": {"charge_id": "ch_3NxYzAbCdEfGhIjK", "amount_cents": 34900, "currency": "usd",
                "reason": "duplicate", "customer_id": "cus_QaAbCdEfGhIjK"},
    "justification": "Customer provided proof of duplicate charge within dispute window.",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, database_url: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "servers.py"), kind, database_url, str(port)],
                               cwd=ROOT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/healthz" if kind == "cheqpoint" else f"{base}/docs", timeout=0.5)
            return process, base
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{kind} server did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(base: str, headers: dict[str, str], total: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = total
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        async def one_connection() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.post("/v1/approvals", json=BODY)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 202, response.text

        began = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return total / elapsed, latencies


def load_with_wrk(base: str, headers: dict[str, str], seconds: int, concurrency: int) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(BODY))}",
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    command = ["wrk", "-t1", f"-c{concurrency}", "-s", str(script), f"{base}/v1/approvals"]
    subprocess.run([*command[:1], "-d2s", *command[1:]], capture_output=True, check=True)  # warm up
    out = subprocess.run([*command[:1], f"-d{seconds}s", "--latency", *command[1:]], capture_output=True,
                         text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"the server answered errors under load:\n{out}")

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"requests_per_s": rps, "p50_ms": millis("50%"), "p99_ms": millis("99%")}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def holds(base: str, headers: dict[str, str], count: int, pid: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    # The reviewers' side gets its own small client: a pool of a thousand busy connections is slow
    # to find a free one in, and that would delay the decisions, not the service.
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as client, \
            httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as reviewer:
        lags: list[float] = []
        rehelds: list[str] = []

        async def hold(i: int) -> None:
            # As an agent does: one long hold, then more with `waitMs` while it is still pending.
            approval = (await client.post("/v1/approvals", json={**BODY, "timeoutMs": 60_000})).json()
            while approval["status"] == "pending":
                rehelds.append(approval["approvalId"])
                try:
                    approval = (await client.get(f"/v1/approvals/{approval['approvalId']}",
                                                 params={"waitMs": 60_000})).json()
                except httpx.TransportError:  # a kept-alive connection closed under us: ask again
                    continue
            # Both processes read one system clock: compare arrival with the server's `decidedAt`.
            lags.append(time.time() - datetime.fromisoformat(approval["decidedAt"]).timestamp())
            assert approval["status"] == "rejected", approval

        idle = rss_mb(pid)
        tasks = [asyncio.create_task(hold(i)) for i in range(count)]
        pending: list[str] = []
        while len(pending) < count:
            await asyncio.sleep(0.2)
            page = (await reviewer.get("/v1/approvals", params={"status": "pending", "limit": 200})).json()
            cursor, pending = page["nextCursor"], [a["approvalId"] for a in page["data"]]
            while cursor:
                page = (await reviewer.get("/v1/approvals", params={"status": "pending", "limit": 200,
                                                                  "cursor": cursor})).json()
                cursor = page["nextCursor"]
                pending += [a["approvalId"] for a in page["data"]]
        await asyncio.sleep(0.5)
        memory = rss_mb(pid)

        async def decide(approval_id: str) -> None:
            response = await reviewer.post(f"/bench/decide/{approval_id}")
            assert response.json()["outcome"] == "decided", response.text

        deciding = time.perf_counter()
        for start in range(0, len(pending), 20):  # reviewers' clicks arrive over time, not all at once
            await asyncio.gather(*(decide(i) for i in pending[start:start + 20]))
            await asyncio.sleep(0.05)
        deciding = time.perf_counter() - deciding
        await asyncio.gather(*tasks)
        server_lags = (await reviewer.get("/bench/releases")).json()
    return {"holds": count, "rss_idle_mb": idle, "rss_mb": memory, "deciding_s": deciding,
            "reheld": len(rehelds),
            "server_release_p50_ms": percentile(server_lags, 0.5) * 1000,
            "server_release_p99_ms": percentile(server_lags, 0.99) * 1000,
            "server_release_max_ms": max(server_lags) * 1000, "server_releases": len(server_lags),
            "client_release_p50_ms": percentile(lags, 0.5) * 1000,
            "client_release_p99_ms": percentile(lags, 0.99) * 1000, "client_release_max_ms": max(lags) * 1000}


async def connection_key(database_url: str) -> str:
    from api.connections import service
    from api.db import Database
    from api.migrate import upgrade

    db = Database(database_url)
    try:
        await upgrade(db.engine)
        created = await db.write(lambda session: service.create(session, "bench"))
        return created.key
    finally:
        await db.close()


def summarise(rps: float, latencies: list[float]) -> dict[str, float]:
    return {"requests_per_s": round(rps, 1), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            "mean_ms": round(statistics.mean(latencies) * 1000, 2)}


def measure(base: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    if shutil.which("wrk"):
        return {"load": "wrk", **load_with_wrk(base, headers, args.seconds, args.concurrency)}
    asyncio.run(load(base, headers, 300, args.concurrency))  # warm up
    return {"load": "httpx", **summarise(*asyncio.run(load(base, headers, args.requests, args.concurrency)))}


@contextlib.contextmanager
def fake_stripe() -> Iterator[dict[str, str]]:
    """The fake Stripe of the test suite, holding the charge BODY refunds; the settings to use it."""
    from tests.fakes.stripe import FakeStripe

    with FakeStripe() as fake:
        charge = fake.add_charge(amount=10_000_000, currency="usd", customer=BODY["details"]["customer_id"])
        with fake._lock:
            fake.charges[BODY["details"]["charge_id"]] = {**fake.charges.pop(charge["id"]),
                                                         "id": BODY["details"]["charge_id"]}
        yield {"STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_API_BASE": fake.url or ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="how long wrk loads each server")
    parser.add_argument("--requests", type=int, default=4000, help="requests per server without wrk")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--holds", type=int, default=1000, help="0: skip the holds")
    parser.add_argument("--servers", default="baseline,cheqpoint,cheqpoint_verified",
                        help="which intake servers to load, comma-separated")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cheqpoint-bench-"))

    results = {}
    for name in args.servers.split(","):
        kind = "baseline" if name == "baseline" else "cheqpoint"
        url = f"sqlite+aiosqlite:///{workdir / (name + '.db')}"
        headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"} if kind == "cheqpoint" else {}
        with contextlib.ExitStack() as stack:
            env = stack.enter_context(fake_stripe()) if name == "cheqpoint_verified" else {}
            process, base = start(kind, url, env)
            try:
                results[name] = {"server": name, "concurrency": args.concurrency, **measure(base, headers, args)}
                print(json.dumps(results[name]))
            finally:
                process.terminate()
                process.wait()

    rate = {name: result["requests_per_s"] for name, result in results.items()}
    if "baseline" in rate and "cheqpoint" in rate:
        print(json.dumps({"intake_throughput_ratio_vs_baseline": round(rate["cheqpoint"] / rate["baseline"], 2)}))
    if "cheqpoint" in rate and "cheqpoint_verified" in rate:
        verified = rate["cheqpoint_verified"] / rate["cheqpoint"]
        print(json.dumps({"intake_throughput_ratio_verified_vs_unverified": round(verified, 2)}))
    if args.holds <= 0:
        return

    url = f"sqlite+aiosqlite:///{workdir / 'holds.db'}"
    headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
    process, base = start("cheqpoint", url)
    try:
        held = asyncio.run(holds(base, headers, args.holds, process.pid))
        print(json.dumps({k: round(v, 1) for k, v in held.items()}))
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
