"""The app's CPU per intake request without a server: `PYTHONPATH=. .venv/bin/python bench/asgi_cost.py`.

Calls the ASGI app directly (no uvicorn, no sockets, no load generator in the process) with 32
concurrent requests of bench/intake.py's body, and divides the process's CPU time (all threads: the
event loop and SQLite's) by the number of requests. What it leaves out (the HTTP server, the
kernel) is the same for any two versions of the app, so it compares them more steadily than a run
under wrk on a shared machine. The code measured is whatever `api` PYTHONPATH points at, so the
same file measures another checkout: `PYTHONPATH=/other/checkout python bench/asgi_cost.py`.
`--policy bench/velocity.yaml` serves the velocity rule (totals read on every refund) instead of the
built-in policy.
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

BODY = json.dumps({
    "action": "issue_refund",
    "summary": "Refund duplicate charge ch_3NxYz for $349.00",
    "details": {"charge_id": "ch_3NxYzAbCdEfGhIjK", "amount_cents": 34900, "currency": "usd",
                "reason": "duplicate", "customer_id": "cus_QaAbCdEfGhIjK"},
    "justification": "Customer provided proof of duplicate charge within dispute window.",
}).encode()


async def measure(total: int, concurrency: int, compat: bool = False,
                  policy: Path | None = None) -> tuple[float, float, float]:
    from api.config import Settings
    from api.connections import service
    from api.db import Database
    from api.main import create_app, running
    from api.migrate import upgrade

    url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'cost.db'}"
    db = Database(url)
    await upgrade(db.engine)
    key = (await db.write(lambda session: service.create(session, "bench"))).key
    await db.close()
    # As bench/servers.py runs it: the per-Connection limits off, the product's other defaults.
    settings = Settings(_env_file=None, database_url=url, limit_requests_per_minute=0, limit_lookups_per_minute=0,
                        limit_pending=0, limit_holds=0, approvers=["UBENCHREVIEWER"], policy_file=policy)
    app = create_app(settings)
    path, expected = ("/api/approvals/request", 200) if compat else ("/v1/approvals", 202)
    auth = (b"x-api-key", key.encode()) if compat else (b"authorization", f"Bearer {key}".encode())
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), auth,
               (b"content-length", str(len(BODY)).encode())]

    async def one() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "root_path": "", "query_string": b"", "headers": list(headers), "client": ("127.0.0.1", 5000),
                 "server": ("127.0.0.1", 8000), "state": {}}
        sent = False
        status = 0

        async def receive() -> dict[str, object]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": BODY, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]  # type: ignore[assignment]

        await app(scope, receive, send)
        assert status == expected, status

    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    async with running(app.state.container):
        await asyncio.gather(*(worker(200 // concurrency + 1) for _ in range(concurrency)))  # warm up
        cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
        await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
        cpu, loop_cpu, wall = time.process_time() - cpu, time.thread_time() - loop_cpu, time.perf_counter() - wall
    done = total // concurrency * concurrency
    return 1000 * cpu / done, 1000 * loop_cpu / done, done / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--compat", action="store_true", help="the compatible API's POST /api/approvals/request")
    parser.add_argument("--policy", type=Path, help="serve this policy file (bench/velocity.yaml: the velocity rule)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    ms, loop_ms, rate = asyncio.run(measure(args.requests, args.concurrency, args.compat, args.policy))
    # The event loop's thread alone as well: the other threads' share (SQLite's, the pollers') moves
    # more with the machine's load, as pollers wake by the clock, not by the request.
    print(f"{ms:.3f} ms of CPU a request, {loop_ms:.3f} ms of it the event loop's "
          f"({rate:.0f} requests/s in-process), load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
