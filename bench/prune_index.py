"""What the hourly prune of the velocity counters costs, with and without the `starts_at` index:
`PYTHONPATH=. .venv/bin/python bench/prune_index.py [--keys 150] [--repeat 5]`.

Fills a migrated SQLite file with a day of counters (per-minute and per-hour buckets for `--keys`
keys, about what the totals keep), then runs the prune (`api/usage/prune.py`'s `delete_batch` until
a batch comes back short) in the steady state: the rows older than the cut-off are one hour's worth.
Reports the process's CPU time per prune (the SQLite thread included), with the index and after
dropping it, on copies of the same file.
"""

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from api.db import Database
from api.migrate import upgrade
from api.usage.models import UsageTotal
from api.usage.prune import BATCH, KEEP, delete_batch

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def rows(keys: int, hours: int) -> list[dict]:
    start = NOW - timedelta(hours=hours)
    out = []
    for minute in range(hours * 60):
        at = start + timedelta(minutes=minute)
        for key in range(keys):
            base = {"scope": "connection", "subject": f"conn_{key:04d}", "action": "issue_refund",
                    "currency": "usd", "count": 1, "amount": 100}
            out.append({**base, "span": 60, "starts_at": at})
            if minute % 60 == 0:
                out.append({**base, "span": 3600, "starts_at": at})
    return out


async def fill(path: Path, keys: int, hours: int) -> int:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    await engine.dispose()
    db = Database(f"sqlite+aiosqlite:///{path}")
    made = rows(keys, hours)
    for first in range(0, len(made), 20_000):
        await db.write(lambda s, chunk=made[first:first + 20_000]: s.execute(insert(UsageTotal), chunk))
    await db.close()
    return len(made)


async def prune_cpu(path: Path, drop_index: bool) -> tuple[float, int]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    if drop_index:
        await db.write(lambda s: s.execute(text("DROP INDEX ix_usage_totals_starts_at")))
    before, total = NOW - KEEP, 0
    started = time.process_time()
    while True:
        deleted = await db.write(lambda s: delete_batch(s, before))
        total += deleted
        if deleted < BATCH:
            break
    spent = time.process_time() - started
    await db.close()
    return spent, total


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    hours = int(KEEP / timedelta(hours=1)) + 1  # the kept day and the hour past it
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        count = await fill(template, args.keys, hours)
        print(f"{count} counter rows, {args.keys} keys, {hours} hours")
        for label, drop in (("with index", False), ("without index", True)):
            runs = []
            for n in range(args.repeat):
                copy = Path(tmp) / f"run{n}.db"
                shutil.copy(template, copy)
                runs.append(await prune_cpu(copy, drop))
                copy.unlink()
            cpu = [c for c, _ in runs]
            print(f"{label:14}: deleted {runs[0][1]} rows, CPU per prune median {statistics.median(cpu) * 1000:.0f} ms"
                  f" (min {min(cpu) * 1000:.0f}, max {max(cpu) * 1000:.0f})")


if __name__ == "__main__":
    asyncio.run(main())
