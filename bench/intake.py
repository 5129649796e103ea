"""Intake benchmark: `make bench` (or `.venv/bin/python bench/intake.py`).

1. Async intake throughput and latency at 32 concurrent connections, Cheqpoint against a bare
   FastAPI endpoint that parses the same body and does one insert, both on SQLite, both measured in
   this run; the ratio is what to quote.
2. 1,000 concurrent synchronous holds, each released by a decision: how long after its decision
   each hold returned, and the server's resident memory while holding them.

Each server runs in its own process; this one only sends load. Figures depend on the machine: two
cores here are shared by the load generator and the server.
"""

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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


def start(kind: str, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "servers.py"), kind, database_url, str(port)],
                               cwd=ROOT)
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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def holds(base: str, headers: dict[str, str], count: int, pid: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as client:
        returned: dict[str, float] = {}

        async def hold(i: int) -> None:
            response = await client.post("/v1/approvals", json={**BODY, "timeoutMs": 60_000},
                                         headers={"Idempotency-Key": f"hold-{i}"})
            returned[response.json()["approvalId"]] = time.perf_counter()
            assert response.json()["status"] == "rejected", response.text

        tasks = [asyncio.create_task(hold(i)) for i in range(count)]
        pending: list[str] = []
        while len(pending) < count:
            await asyncio.sleep(0.2)
            page = (await client.get("/v1/approvals", params={"status": "pending", "limit": 200})).json()
            cursor, pending = page["nextCursor"], [a["approvalId"] for a in page["data"]]
            while cursor:
                page = (await client.get("/v1/approvals", params={"status": "pending", "limit": 200,
                                                                  "cursor": cursor})).json()
                cursor = page["nextCursor"]
                pending += [a["approvalId"] for a in page["data"]]
        await asyncio.sleep(0.5)
        memory = rss_mb(pid)
        decided: dict[str, float] = {}
        for approval_id in pending:
            response = await client.post(f"/bench/decide/{approval_id}")
            decided[approval_id] = time.perf_counter()
            assert response.json()["outcome"] == "decided", response.text
        await asyncio.gather(*tasks)
    lags = [returned[i] - decided[i] for i in decided]
    return {"holds": count, "rss_mb": memory, "release_p50_ms": percentile(lags, 0.5) * 1000,
            "release_p99_ms": percentile(lags, 0.99) * 1000, "release_max_ms": max(lags) * 1000}


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


def summarise(name: str, rps: float, latencies: list[float]) -> dict[str, float]:
    return {"server": name, "requests_per_s": round(rps, 1), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2), "mean_ms": round(statistics.mean(latencies) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--holds", type=int, default=1000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cheqpoint-bench-"))

    results = {}
    for kind in ("baseline", "cheqpoint"):
        url = f"sqlite+aiosqlite:///{workdir / (kind + '.db')}"
        headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"} if kind == "cheqpoint" else {}
        process, base = start(kind, url)
        try:
            asyncio.run(load(base, headers, 300, args.concurrency))  # warm up
            rps, latencies = asyncio.run(load(base, headers, args.requests, args.concurrency))
            results[kind] = summarise(kind, rps, latencies)
            print(json.dumps(results[kind]))
        finally:
            process.terminate()
            process.wait()

    ratio = results["cheqpoint"]["requests_per_s"] / results["baseline"]["requests_per_s"]
    print(json.dumps({"intake_throughput_ratio_vs_baseline": round(ratio, 2)}))

    url = f"sqlite+aiosqlite:///{workdir / 'holds.db'}"
    headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
    process, base = start("cheqpoint", url)
    try:
        print(json.dumps({k: round(v, 1) for k, v in asyncio.run(holds(base, headers, args.holds, process.pid)).items()}))
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
