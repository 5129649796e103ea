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
import os
import time
from pathlib import Path

from inprocess import BODY, bench_app, call, use_uvloop  # bench/ is on the path as this script's folder


async def measure(total: int, concurrency: int, compat: bool = False,
                  policy: Path | None = None) -> tuple[float, float, float]:
    from api.main import running

    app, key = await bench_app("cost", policy)
    path, expected = ("/api/approvals/request", 200) if compat else ("/v1/approvals", 202)
    auth = (b"x-api-key", key.encode()) if compat else (b"authorization", f"Bearer {key}".encode())
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), auth]

    async def one() -> None:
        status, answer = await call(app, "POST", path, b"", headers, BODY)
        assert status == expected, (status, answer)

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
    use_uvloop()
    ms, loop_ms, rate = asyncio.run(measure(args.requests, args.concurrency, args.compat, args.policy))
    # The event loop's thread alone as well: the other threads' share (SQLite's, the pollers') moves
    # more with the machine's load, as pollers wake by the clock, not by the request.
    print(f"{ms:.3f} ms of CPU a request, {loop_ms:.3f} ms of it the event loop's "
          f"({rate:.0f} requests/s in-process), load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
