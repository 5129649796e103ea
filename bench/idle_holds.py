"""What ten thousand idle holds cost, and where: `PYTHONPATH=. .venv/bin/python bench/idle_holds.py --holds 10000`.

In-process (the app called as ASGI, as bench/rehold_cost.py does; no uvicorn, no sockets), so the
figures are the app's own. Creates `--holds` pending requests and holds every one with
`GET …?waitMs=60000`, then measures two windows of `--seconds` each with the process's CPU time:

- `idle`: nothing arrives; what remains is the poller, timers, the worker's and checkpoint's polling
  and the garbage collector.
- `rehold`: `--rate` re-holds a second on other pending requests (each held `--rehold-wait-ms`), as
  agents coming back at the 60 s cap do; the extra CPU divided by the re-holds is one re-hold's cost.

Every garbage collection in a window is recorded through `gc.callbacks` (generation, milliseconds),
so a collector that walks all the holds shows up as a few long generation-2 collections whose total
grows with `--holds`. Startup's objects are frozen first, as the served app does (api/gc_tuning.py).
"""

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path

from inprocess import BODY, bench_app, call, use_uvloop  # bench/ is on the path as this script's folder

# bench/profile.py would shadow the standard library's `profile`, which cProfile imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
import cProfile  # noqa: E402


class GcLog:
    def __init__(self) -> None:
        self.events: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.events.append((info["generation"], 1000 * (time.process_time() - self._start)))

    def summary(self) -> str:
        parts = []
        for gen in (0, 1, 2):
            ms = [d for g, d in self.events if g == gen]
            if ms:
                parts.append(f"gen{gen} {len(ms)}x {sum(ms):.0f} ms (max {max(ms):.0f})")
        return ", ".join(parts) or "no collections"


async def measure(holds: int, seconds: float, rate: int, rehold_wait_ms: int, freeze: bool,
                  profile: str | None, settle: float) -> None:
    from api.main import running

    app, key = await bench_app("idle")
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {key}".encode())]
    extra = rate * rehold_wait_ms // 1000 + 8  # requests the re-holds cycle over, none held twice at once

    async with running(app.state.container):
        ids: list[str] = []
        for _ in range(holds + extra):
            status, answer = await call(app, "POST", "/v1/approvals", b"", headers, BODY)
            assert status == 202, answer
            ids.append(json.loads(answer)["approvalId"])
        held, spare = ids[:holds], ids[holds:]
        await asyncio.sleep(1.0)
        if freeze:
            gc.collect()
            gc.freeze()
        tasks = []
        for start in range(0, holds, 100):  # 1,000 a second: all at once would time out on the pool
            tasks += [asyncio.create_task(call(app, "GET", f"/v1/approvals/{i}", b"waitMs=60000", headers))
                      for i in held[start:start + 100]]
            await asyncio.sleep(0.1)
        await asyncio.sleep(settle)  # every hold registered: the tail of the opening is not idle
        assert not any(t.done() for t in tasks), [t.result() for t in tasks if t.done()][:3]
        print(f"{holds:,} holds open; gc tracked objects {len(gc.get_objects()):,}, "
              f"frozen {gc.get_freeze_count():,}, counts {gc.get_count()}, threshold {gc.get_threshold()}",
              flush=True)

        log = GcLog()
        gc.callbacks.append(log)
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        cpu = time.process_time()
        await asyncio.sleep(seconds)
        idle = time.process_time() - cpu
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        print(f"  idle   {seconds:.0f} s: CPU {100 * idle / seconds:.2f} %; {log.summary()}", flush=True)

        log.events.clear()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        reholds = 0
        times = os.times()
        inflight: set[asyncio.Task] = set()
        cpu = time.process_time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            i = spare[reholds % len(spare)]
            t = asyncio.create_task(call(app, "GET", f"/v1/approvals/{i}", f"waitMs={rehold_wait_ms}".encode(),
                                         headers))
            inflight.add(t)
            t.add_done_callback(inflight.discard)
            reholds += 1
            await asyncio.sleep(1 / rate)
        busy = time.process_time() - cpu
        user, system = os.times()[0] - times[0], os.times()[1] - times[1]
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{profile}.rehold")
        print(f"  rehold {seconds:.0f} s at {reholds / seconds:.0f}/s: CPU {100 * busy / seconds:.2f} %, "
              f"{1000 * (busy - idle) / reholds:.3f} ms a re-hold above idle "
              f"(user {100 * user / seconds:.1f} %, system {100 * system / seconds:.1f} %); {log.summary()}",
              flush=True)
        gc.callbacks.remove(log)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, *inflight, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--holds", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=150)
    parser.add_argument("--rehold-wait-ms", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds between opening and measuring")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfiles of the idle window (FILE) and the re-hold one (FILE.rehold)")
    parser.add_argument("--no-freeze", action="store_true", help="skip gc.freeze() after start-up")
    args = parser.parse_args()
    use_uvloop()
    asyncio.run(measure(args.holds, args.seconds, args.rate, args.rehold_wait_ms, not args.no_freeze,
                      args.profile, args.settle))
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
