"""Where a held request's memory goes: `.venv/bin/python bench/hold_memory.py --holds 2000`.

Starts the bench server (bench/servers.py, the product's server and app) with tracemalloc on, creates
`--holds` pending requests, takes a snapshot with nobody holding, opens one connection per request
holding it with `GET …?waitMs=60000`, and takes a second snapshot once every hold is registered. Prints
the resident memory per hold, the part of it Python's allocator traced, and the lines (or, with
`--traceback`, the call paths) that allocated the difference, largest first. `--no-trace` measures RSS
alone: tracemalloc's own bookkeeping inflates the resident figure.
"""

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from holds import rss_mb
from intake import BODY, connection_key, start
from wire import Conn, render


async def _call(port: int, raw: bytes) -> tuple[int, object]:
    conn = await Conn.open(port)
    try:
        while True:
            status, answer = await conn.call(raw)
            if status != 503:  # refused while the server is busy (api/admission.py): ask again later
                return status, answer
            await asyncio.sleep(2.0)
    finally:
        conn.close()


async def _hold(conn: Conn, raw: bytes) -> None:
    """Hold until answered; a hold refused with 503 is sent again after Retry-After, as the SDKs do."""
    for _attempt in range(100):
        if (await conn.call(raw))[0] != 503:
            return
        await asyncio.sleep(2.0)


async def measure(port: int, headers: dict[str, str], count: int, pid: int, workdir: Path,
                  traced: bool) -> dict[str, object]:
    create = render("POST", "/v1/approvals", headers, BODY)
    creators = [await Conn.open(port) for _ in range(16)]
    ids: list[str] = []

    async def creator(conn: Conn, n: int) -> None:
        for _ in range(n):
            status, answer = await conn.call(create)
            assert status == 202, answer
            ids.append(answer["approvalId"])  # type: ignore[index]
        conn.close()

    await asyncio.gather(*(creator(c, count // 16 + (i < count % 16)) for i, c in enumerate(creators)))
    print(f"  {len(ids):,} requests created", flush=True)
    await asyncio.sleep(2.0)  # the worker's jobs for the new requests settle
    before = workdir / "before.snapshot"
    if traced:
        await _call(port, render("POST", f"/bench/snapshot?path={before}", {}))
    rss_before = rss_mb(pid)

    holders: list[Conn] = []
    began = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for step in range(0, count, 250):  # in steps, as agents arrive, not ten thousand in one instant
        # Connected just before asking: the server closes a connection that sends nothing for 10 s.
        batch = await asyncio.gather(*(Conn.open(port) for _ in ids[step:step + 250]))
        holders += batch
        for conn, approval_id in zip(batch, ids[step:step + 250], strict=True):
            tasks.append(asyncio.create_task(_hold(conn, render("GET", f"/v1/approvals/{approval_id}?waitMs=60000",
                                                                 headers))))
        wanted = min(count, step + 250)
        while (held := (await _call(port, render("GET", "/bench/state", {})))[1]["held"]) < wanted:  # type: ignore[index]
            if time.perf_counter() - began > 300:
                raise SystemExit(f"only {held} of {count} holds registered")
            await asyncio.sleep(0.2)
        print(f"  {held:,} held", flush=True)
    await asyncio.sleep(2.0)
    after = workdir / "after.snapshot"
    if traced:
        await _call(port, render("POST", f"/bench/snapshot?path={after}", {}))
    rss_after = rss_mb(pid)
    for task in tasks:
        task.cancel()
    for conn in holders:
        conn.close()
    return {"rss_before": rss_before, "rss_after": rss_after, "before": before, "after": after}


def report(figures: dict[str, object], count: int, traced: bool, traceback: bool, top: int) -> None:
    per_hold_kb = (float(figures["rss_after"]) - float(figures["rss_before"])) * 1024 / count  # type: ignore[arg-type]
    print(f"RSS: {figures['rss_before']:.1f} MB idle, {figures['rss_after']:.1f} MB with {count:,} held: "
          f"{per_hold_kb:.1f} KB a hold")
    if not traced:
        return
    before = tracemalloc.Snapshot.load(str(figures["before"]))
    after = tracemalloc.Snapshot.load(str(figures["after"]))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    before, after = before.filter_traces(ignore), after.filter_traces(ignore)
    diff = after.compare_to(before, "traceback" if traceback else "lineno")
    total = sum(d.size_diff for d in diff)
    print(f"traced by Python's allocator: {total / count / 1024:.1f} KB a hold "
          f"({sum(d.count_diff for d in diff) / count:.1f} blocks); the rest is outside it (sockets, buffers, "
          "the allocator's own overhead)")
    root = str(Path(__file__).resolve().parents[1])
    for stat in diff[:top]:
        frames = stat.traceback if traceback else stat.traceback[:1]
        where = " <- ".join(f"{f.filename.replace(root + '/', '').split('site-packages/')[-1]}:{f.lineno}"
                            for f in list(frames)[:6])
        print(f"{stat.size_diff / count:8.0f} B/hold {stat.count_diff / count:6.2f} blocks  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--holds", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=1, help="frames kept per traced allocation")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--traceback", action="store_true", help="group by call path, not by line")
    parser.add_argument("--no-trace", action="store_true", help="RSS only, without tracemalloc")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cheqpoint-holdmem-"))
    url = f"sqlite+aiosqlite:///{workdir / 'holds.db'}"
    headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
    env = {} if args.no_trace else {"CHEQPOINT_BENCH_TRACEMALLOC": str(args.frames)}
    process, base = start("cheqpoint", url, env)
    try:
        figures = asyncio.run(measure(int(base.rsplit(":", 1)[1]), headers, args.holds, process.pid, workdir,
                                      not args.no_trace))
    finally:
        process.terminate()
        process.wait()
    report(figures, args.holds, not args.no_trace, args.traceback, args.top)


if __name__ == "__main__":
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # one socket per hold, on this side too
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sys.exit(main() or 0)
