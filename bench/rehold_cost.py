"""The app's CPU per held request, without a server: `PYTHONPATH=. .venv/bin/python bench/rehold_cost.py`.

Ten thousand agents holding with the 60 s cap come back about 167 times a second just to stay held
(`GET /v1/approvals/{id}?waitMs=60000` again), so what one re-hold costs, with nothing decided, is
what ten thousand idle holds cost. This calls the ASGI app directly, as bench/asgi_cost.py does
(no uvicorn, no sockets), and divides the process's CPU time (all threads) by the requests:

- `rehold`: `GET …?waitMs=W` on pending requests created beforehand, each held W ms (short, so that
  the measurement is the re-holds' own work: authentication, slot, loads, timer, answer).
- `create-hold`: `POST /v1/approvals` with `timeoutMs: W`, a synchronous request from its start.
- `async`: the same POST without `timeoutMs`, for comparison.

`--profile FILE` writes a cProfile of the measured part. The code measured is whatever `api`
PYTHONPATH points at, so `PYTHONPATH=/other/checkout python bench/rehold_cost.py` measures another.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from inprocess import BODY, bench_app, call, use_uvloop  # bench/ is on the path as this script's folder

# bench/profile.py would shadow the standard library's `profile`, which cProfile imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
import cProfile  # noqa: E402


async def measure(mode: str, total: int, concurrency: int, wait_ms: int, profile: str | None) -> tuple[float, int]:
    from api.main import running

    app, key = await bench_app("cost")
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {key}".encode())]
    held_body = json.dumps({**json.loads(BODY), "timeoutMs": wait_ms}).encode()

    async with running(app.state.container):
        ids: list[str] = []
        for _ in range(concurrency):
            status, answer = await call(app, "POST", "/v1/approvals", b"", headers, BODY)
            assert status == 202, answer
            ids.append(json.loads(answer)["approvalId"])

        async def worker(n: int, count: int) -> None:
            for _ in range(count):
                if mode == "rehold":
                    status, answer = await call(app, "GET", f"/v1/approvals/{ids[n]}",
                                                f"waitMs={wait_ms}".encode(), headers)
                    assert status == 200 and b'"pending"' in answer, (status, answer)
                elif mode == "create-hold":
                    status, answer = await call(app, "POST", "/v1/approvals", b"", headers, held_body)
                    assert status == 200, (status, answer)
                else:
                    status, answer = await call(app, "POST", "/v1/approvals", b"", headers, BODY)
                    assert status == 202, (status, answer)

        await asyncio.gather(*(worker(n, 100 // concurrency + 1) for n in range(concurrency)))  # warm up
        await asyncio.sleep(1.0)  # the worker's jobs for the requests created settle
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        cpu = time.process_time()
        await asyncio.gather(*(worker(n, total // concurrency) for n in range(concurrency)))
        cpu = time.process_time() - cpu
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
    done = total // concurrency * concurrency
    return 1000 * cpu / done, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("rehold", "create-hold", "async"), default="rehold")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--wait-ms", type=int, default=20, help="how long each hold waits (waitMs/timeoutMs)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the measured part")
    args = parser.parse_args()
    use_uvloop()
    ms, done = asyncio.run(measure(args.mode, args.requests, args.concurrency, args.wait_ms, args.profile))
    print(f"{args.mode}: {ms:.3f} ms of CPU a request ({done} requests, waitMs {args.wait_ms}), "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
