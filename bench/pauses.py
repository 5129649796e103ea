"""Where the intake's pauses come from, measured in the server: `.venv/bin/python bench/pauses.py`.

At a fixed rate well under the maximum a server should answer in about its own service time; a p99
far above that is pauses in the one process. This starts the bench's Cheqpoint server with probes
installed (measurement only, nothing in the product changes) and loads it open-loop at `--rate`:

- event-loop lag: a task that sleeps 1 ms and records how late it woke (every wake-up ≥ 5 ms);
- the garbage collector: every collection's generation and duration (`gc.callbacks`);
- the group commit: each batch's size and duration, and each COMMIT's time in SQLite's thread;
- WAL checkpoints: `PRAGMA wal_checkpoint` run by SQLite inside a COMMIT shows as a long COMMIT;
- each caller's wait on the writer (its queue and its batch), and every call into aiosqlite's
  thread by what it ran, per batch (each is a trip through the thread and back through the loop);
- the kernel's view of the loop's thread (`/proc/self/task/<tid>/schedstat`): time on a CPU and time
  runnable but waiting for one, which on a shared machine is most of the lateness;
- what the loop's thread was running while late: its stack, sampled by a watchdog thread.

The records cover the measured run only: the server is told (SIGUSR1) when the warm-up ends.

It prints the client's p50/p99 and, from the server, the largest pauses of each kind and their sums.
"""

import argparse
import asyncio
import atexit
import collections
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))


def install_probes(database: str, out: Path) -> Callable[[], None]:
    """In the server process, before the app is built."""
    import aiosqlite.core

    from api import db

    record: dict[str, list] = {"gc": [], "lag": [], "batch": [], "submit": [], "commit": [], "checkpoint_in_commit": []}
    lag_started: list[asyncio.Task] = []
    started: dict[str, float] = {}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started["gc"], started["gc_cpu"] = time.perf_counter(), time.thread_time()
        elif "gc" in started and lag_started:  # from the first write on: start-up's collections are not load
            record["gc"].append((info["generation"], time.perf_counter() - started["gc"],
                                 time.thread_time() - started["gc_cpu"]))

    gc.callbacks.append(on_gc)

    shm = Path(database.removeprefix("sqlite+aiosqlite:///") + "-shm")

    def wal_index() -> tuple[int, int]:
        """The WAL index's mxFrame (the WAL's last frame) and nBackfill (after its two 48-byte headers,
        how far checkpoints have copied it)."""
        try:
            head = shm.read_bytes()[:100]
        except OSError:
            return -1, -1
        return int.from_bytes(head[16:20], sys.byteorder), int.from_bytes(head[96:100], sys.byteorder)

    async def commit(self: aiosqlite.core.Connection) -> None:
        def timed() -> None:
            automatic = self._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            before, began = wal_index()[1], time.perf_counter()
            self._conn.commit()
            spent = time.perf_counter() - began
            record["commit"].append(spent)
            frames, copied = wal_index()
            # SQLite checkpoints in a COMMIT once the WAL holds `wal_autocheckpoint` frames; a copy
            # made below that is another connection's (a checkpointer's), not this COMMIT's.
            if copied != before and frames >= automatic > 0:
                record["checkpoint_in_commit"].append(spent)
            record["wal_frames"] = max(record.get("wal_frames", 0), frames)
        await self._execute(timed)

    aiosqlite.core.Connection.commit = commit

    # Every call into aiosqlite's thread (a round trip: queued to the thread, answered through the
    # event loop), by what it ran: a batch's callers wait for each one before theirs.
    original_execute = aiosqlite.core.Connection._execute

    async def execute(self: aiosqlite.core.Connection, fn: Callable, *args: object, **kwargs: object) -> object:
        if lag_started:
            name = getattr(getattr(fn, "func", fn), "__qualname__", "?")
            if args and isinstance(args[0], str):
                name += " " + " ".join(args[0].split()[:3])
            record["trips"][name] = record["trips"].get(name, 0) + 1
        return await original_execute(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = execute
    record["trips"] = {}

    original_run = db.GroupCommitWriter._run_together
    original_alone = db.GroupCommitWriter._run_alone

    async def lag_monitor() -> None:
        while True:
            due = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            beat[0] = time.perf_counter()
            late = beat[0] - due
            if late >= 0.005:
                record["lag"].append(late)

    def ensure_lag() -> None:
        if not lag_started:
            record["objects_at_start"] = [len(gc.get_objects(generation)) for generation in (0, 1, 2)]
            record["frozen"] = gc.get_freeze_count()
            lag_started.append(asyncio.get_running_loop().create_task(lag_monitor()))

    async def run_together(self, batch):
        ensure_lag()
        began = time.perf_counter()
        await original_run(self, batch)
        record["batch"].append((len(batch), time.perf_counter() - began))

    async def run_alone(self, fn, future):
        ensure_lag()
        began = time.perf_counter()
        await original_alone(self, fn, future)
        record["batch"].append((1, time.perf_counter() - began))

    original_submit = db.GroupCommitWriter.submit

    async def submit(self, fn):  # a caller's whole wait on the writer: the queue, its batch, the COMMIT
        began = time.perf_counter()
        try:
            return await original_submit(self, fn)
        finally:
            record["submit"].append(time.perf_counter() - began)

    db.GroupCommitWriter._run_together = run_together
    db.GroupCommitWriter._run_alone = run_alone
    db.GroupCommitWriter.submit = submit

    # What the event loop's thread is doing while it is late: a watchdog thread samples its stack every
    # 2 ms whenever the lag monitor has not woken for 10 ms (uvloop's callbacks cannot be timed from
    # Python). A sample landing in the selector means the thread was waiting (for a core), not working.
    record["stalls"] = []
    beat = [time.perf_counter()]
    loop_thread = threading.get_ident()

    def watchdog() -> None:
        while True:
            time.sleep(0.002)
            if lag_started and time.perf_counter() - beat[0] > 0.010:
                frame = sys._current_frames().get(loop_thread)
                where = []
                while frame is not None and len(where) < 6:
                    code = frame.f_code
                    where.append(f"{Path(code.co_filename).name}:{code.co_name}")
                    frame = frame.f_back
                record["stalls"].append(" < ".join(where))

    threading.Thread(target=watchdog, daemon=True, name="pauses-watchdog").start()

    loop_task = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")

    def schedstat() -> tuple[float, float]:
        """The loop's thread: seconds on a CPU, and seconds runnable but waiting for one (the kernel's)."""
        try:
            on_cpu, waiting, _ = loop_task.read_text().split()
        except (OSError, ValueError):
            return 0.0, 0.0
        return int(on_cpu) / 1e9, int(waiting) / 1e9

    record["sched_at_reset"] = schedstat()

    def reset(*_: object) -> None:  # the measured run starts: what the wrk and warm-up phases left is dropped
        for key in ("gc", "lag", "batch", "commit", "checkpoint_in_commit", "stalls", "submit"):
            record[key].clear()
        record["wal_frames"] = 0
        record["trips"] = {}
        record["sched_at_reset"] = schedstat()

    signal.signal(signal.SIGUSR1, reset)

    def dump() -> None:
        on_cpu, waiting = schedstat()
        record["sched"] = [on_cpu - record["sched_at_reset"][0], waiting - record["sched_at_reset"][1]]
        record["objects"] = [len(gc.get_objects(generation)) for generation in (0, 1, 2)]
        out.write_text(json.dumps(record))

    atexit.register(dump)
    return dump


def serve(tree: Path, database_url: str, port: int, out: Path) -> None:
    sys.path.insert(0, str(tree))  # the checkout measured: its `api` and its bench server

    dump = install_probes(database_url, out)

    def stop(*_: object) -> None:  # the record written now: an exception raised here could land in a gc callback
        dump()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    sys.argv = ["servers.py", "cheqpoint", database_url, str(port)]
    import runpy

    runpy.run_path(str(tree / "bench" / "servers.py"), run_name="__main__")


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: none"
    ordered = sorted(values)
    return (f"{name}: n={len(values)} sum={sum(values) * 1000:.0f} ms "
            f"p50={ordered[len(ordered) // 2] * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms "
            f"p99={ordered[int(len(ordered) * 0.99)] * 1000:.1f} ms top5={[round(v * 1000, 1) for v in ordered[-5:]]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=0,
                        help="requests/s; 0: half the maximum, measured first with wrk at 32 connections")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--tree", type=Path, default=BENCH.parent, help="the checkout to serve (before/after)")
    args = parser.parse_args()
    from intake import BODY, connection_key, free_port, load_with_wrk
    from wire import open_loop, percentile, render

    workdir = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{workdir / 'pauses.db'}"
    headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
    port, out = free_port(), workdir / "probes.json"
    process = subprocess.Popen([sys.executable, __file__, "serve", str(args.tree.resolve()), url, str(port), str(out)],
                               env={**os.environ, "PYTHONPATH": str(args.tree.resolve())})
    try:
        raw = render("POST", "/v1/approvals", headers, BODY)
        for _ in range(200):
            try:
                asyncio.run(asyncio.open_connection("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        if not args.rate:  # as bench/run.py's intake stage: the maximum, then half of it
            top = load_with_wrk(f"http://127.0.0.1:{port}", headers, int(args.seconds), 32)
            args.rate = round(top["requests_per_s"] / 2)
            print(f"maximum {top['requests_per_s']:.0f} requests/s (wrk, 32 connections)")
        asyncio.run(open_loop(port, raw, args.rate, args.warmup))
        process.send_signal(signal.SIGUSR1)  # the server's records cover the measured run only
        result = asyncio.run(open_loop(port, raw, args.rate, args.seconds))
    finally:
        process.terminate()
        process.wait()
    probes = json.loads(out.read_text())
    print(f"{args.tree.resolve()}: rate {args.rate}/s for {args.seconds} s (after {args.warmup} s warm-up), "
          f"load average {os.getloadavg()[0]:.2f}, errors {result.errors}")
    print(f"client: p50 {percentile(result.latencies, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(result.latencies, 0.99) * 1000:.1f} ms, max {max(result.latencies) * 1000:.1f} ms")
    print("server, during the measured run:")
    print("  " + summary("loop lag ≥ 5 ms", probes["lag"]))
    for generation in (0, 1, 2):
        print("  " + summary(f"gc gen {generation}", [d for g, d, _ in probes["gc"] if g == generation]))
        print("  " + summary("  its CPU time", [c for g, _, c in probes["gc"] if g == generation]))
    print("  " + summary("COMMIT in SQLite's thread", probes["commit"]))
    print("  " + summary("of which COMMITs that checkpointed", probes["checkpoint_in_commit"]))
    print(f"  the WAL's largest size seen at a COMMIT: {probes.get('wal_frames', 0)} frames")
    print("  " + summary("group-commit batch", [d for _, d in probes["batch"]]))
    print("  " + summary("a caller's wait on the writer (queue + batch)", probes["submit"]))
    trips, batches = probes["trips"], max(1, len(probes["batch"]))
    print(f"  calls into SQLite's thread: {sum(trips.values()) / batches:.2f} a batch; by call, a batch:")
    for name, count in sorted(trips.items(), key=lambda item: -item[1])[:8]:
        print(f"    {count / batches:5.2f}  {name}")
    on_cpu, waiting = probes["sched"]
    print(f"  the loop's thread (from the kernel, /proc schedstat): {on_cpu * 1000:.0f} ms on a CPU, "
          f"{waiting * 1000:.0f} ms runnable but waiting for a CPU")
    stalls = probes["stalls"]
    print(f"  the loop's thread while late (2 ms samples, {len(stalls)} in all), its innermost frames:")
    for where, count in collections.Counter(stalls).most_common(8):
        print(f"    {count:5d}  {where}")
    print(f"  objects tracked at the first write by generation {probes['objects_at_start']}, "
          f"frozen {probes['frozen']}; at the end (after shut-down) {probes['objects']}")
    sizes = [n for n, _ in probes["batch"]]
    print(f"  batches: {len(sizes)}, mean size {sum(sizes) / max(1, len(sizes)):.1f}, max {max(sizes, default=0)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
