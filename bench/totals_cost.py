"""What reading the velocity totals costs as requests pile up: the running counters (what intake
reads) against the exact aggregate query (what `policy replay` reads), in this process's CPU time
per read, with N requests of the last 24 hours stored for the Connection and the customer.

    .venv/bin/python bench/totals_cost.py                 # N = 0, 1,000, 10,000, 50,000
    .venv/bin/python bench/totals_cost.py --sizes 0 100000 --reads 200

CPU time (`time.process_time`, which includes the SQLite thread) is steadier than wall time on a
busy machine; both are printed. Rows are written as intake writes them, counters included.

    .venv/bin/python bench/totals_cost.py --intake 1600 --rounds 3

instead serves the app in this process (over httpx's ASGI transport, 32 requests at a time, SQLite)
and prints the CPU per intake request without a policy and with `bench/velocity.yaml`, alternately:
the difference is what the velocity rule and its totals cost a request, the client's share being the
same in both. `--parts` times the rule's own parts on a shared machine (each the best of 7 runs,
which load can only lengthen): deciding a request with `bench/velocity.yaml`, and a group commit of
32 requests reading the totals, queueing their counters and writing them at commit.
`CHEQPOINT_BENCH_ROOT=/work/base` measures another checkout's code with this script.
"""

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("CHEQPOINT_BENCH_ROOT") or str(Path(__file__).resolve().parents[1]))

import api.models  # noqa: F401
from api.approvals.models import Approval
from api.connections import service as connections
from api.db import Database
from api.migrate import upgrade
from api.policy.usage import compute_totals
from api.usage import track
from api.usage.read import running_totals

ROOT = Path(sys.path[0])  # the checkout whose code is measured
CUSTOMER = "cus_QaAbCdEfGhIjK"
DETAILS = {"charge_id": "ch_3NxYzAbCdEfGhIjK", "amount_cents": 1500, "currency": "usd", "customer_id": CUSTOMER}


def stored(number: int, connection_id: str, at: datetime) -> Approval:
    return Approval(id=f"apr_b{number:09d}", connection_id=connection_id, request_hash="0" * 64, surface="native",
                    status="pending" if number % 3 else "approved", action="issue_refund", summary="bench",
                    details=DETAILS, changes={}, expires_at=at + timedelta(days=1), approvers=[],
                    required_approvals=1, request_metadata={}, extra={}, execute=False,
                    execution_status="not_requested", created_at=at, updated_at=at)


async def fill(db: Database, connection_id: str, count: int, now: datetime) -> None:
    """`count` requests spread over the last 23 hours, written in batches as intake writes them."""
    step = timedelta(hours=23) / max(count, 1)
    for first in range(0, count, 2000):
        async def write(session: Any, first: int = first) -> None:
            for number in range(first, min(first + 2000, count)):
                approval = stored(number, connection_id, now - timedelta(hours=23) + step * number)
                session.add(approval)
                track.added(session, approval)
        await db.write(write)


async def per_read(db: Database, connection: Any, read: Any, now: datetime, reads: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    async with db.read() as session:
        for _ in range(reads):
            session.info.pop(track.READS, None)  # what a transaction keeps of its reads: measure the read
            await read(session, connection, "issue_refund", DETAILS, now)
    return ((time.process_time() - cpu) / reads * 1000, (time.perf_counter() - wall) / reads * 1000)


async def measure(size: int, reads: int, workdir: Path) -> tuple[int, float, float, float, float]:
    db = Database(f"sqlite+aiosqlite:///{workdir / f'totals-{size}.db'}")
    try:
        await upgrade(db.engine)
        created = await db.write(lambda session: connections.create(session, "bench"))
        now = datetime.now(UTC)
        await fill(db, created.connection.id, size, now)
        async with db.read() as session:
            connection = await session.get(type(created.connection), created.connection.id)
            assert await running_totals(session, connection, "issue_refund", DETAILS, now) == \
                await compute_totals(session, connection, "issue_refund", DETAILS, now)
        running = await per_read(db, connection, running_totals, now, reads)
        exact = await per_read(db, connection, compute_totals, now, max(5, reads // 20) if size else reads)
        return size, *running, *exact
    finally:
        await db.close()


async def intake_cpu(policy: Path | None, requests: int, workdir: Path, concurrency: int = 32) -> float:
    """CPU ms per intake request, the app served in this process (client included)."""
    import httpx

    from api.main import build_container, create_app, running

    sys.path.insert(0, str(ROOT / "bench"))
    from intake import BODY
    from servers import cheqpoint_settings

    if policy is None:
        os.environ.pop("CHEQPOINT_POLICY_FILE", None)
    else:
        os.environ["CHEQPOINT_POLICY_FILE"] = str(policy)
    settings = cheqpoint_settings(f"sqlite+aiosqlite:///{workdir / f'intake-{time.monotonic_ns()}.db'}")
    container = build_container(settings)
    await upgrade(container.db.engine)
    each = requests // concurrency
    async with running(container, worker=False):
        created = await container.db.write(lambda session: connections.create(session, "bench"))
        transport = httpx.ASGITransport(app=create_app(settings, container=container))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test",
                                     headers={"Authorization": f"Bearer {created.key}"}) as http:
            async def agent(count: int) -> None:
                for _ in range(count):
                    response = await http.post("/v1/approvals", json=BODY)
                    assert response.status_code == 202, response.text

            await asyncio.gather(*(agent(10) for _ in range(concurrency)))  # warm up
            cpu = time.process_time()
            await asyncio.gather(*(agent(each) for _ in range(concurrency)))
            spent = time.process_time() - cpu
    await container.db.close()
    return spent / (each * concurrency) * 1000


async def intake_rounds(requests: int, rounds: int) -> None:
    logging.disable(logging.WARNING)
    print(f"code: {ROOT}")
    print("| round | no policy: CPU ms/request | velocity.yaml: CPU ms/request | difference | load average |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for round_ in range(1, rounds + 1):
            plain = await intake_cpu(None, requests, Path(workdir))
            velocity = await intake_cpu(ROOT / "bench" / "velocity.yaml", requests, Path(workdir))
            print(f"| {round_} | {plain:.3f} | {velocity:.3f} | {velocity - plain:+.3f} | "
                  f"{os.getloadavg()[0]:.1f} |", flush=True)


async def parts() -> None:
    from api.policy.engine import PolicyInput
    from api.policy.loader import load_policy

    logging.disable(logging.WARNING)
    print(f"code: {ROOT}")
    with tempfile.TemporaryDirectory() as workdir:
        db = Database(f"sqlite+aiosqlite:///{Path(workdir) / 'parts.db'}")
        await upgrade(db.engine)
        created = await db.write(lambda session: connections.create(session, "bench"))
        now = datetime.now(UTC)
        await fill(db, created.connection.id, 1000, now - timedelta(minutes=5))
        async with db.read() as session:
            connection = await session.get(type(created.connection), created.connection.id)
            totals = await running_totals(session, connection, "issue_refund", DETAILS, now)
        policy = load_policy(ROOT / "bench" / "velocity.yaml")
        request = PolicyInput(action="issue_refund", details={**DETAILS, "amount_cents": 34900}, now=now,
                              connection={"id": connection.id, "name": connection.name}, totals=totals)
        best = []
        for _ in range(7):
            cpu = time.process_time()
            for _ in range(2000):
                policy.evaluate(request)
            best.append((time.process_time() - cpu) / 2000 * 1000)
        print(f"deciding a request with velocity.yaml: {min(best):.3f} ms of CPU")
        best = []
        for run in range(7):
            batches = [[stored(100000 + run * 10000 + b * 32 + i, connection.id,
                               now + timedelta(milliseconds=b * 32 + i)) for i in range(32)] for b in range(20)]
            cpu = time.process_time()
            for batch in batches:
                async def write(session: Any, batch: list[Approval] = batch) -> None:
                    for approval in batch:
                        await running_totals(session, connection, "issue_refund", DETAILS, approval.created_at)
                        track.added(session, approval)
                await db.write(write)
            best.append((time.process_time() - cpu) / (20 * 32) * 1000)
        print(f"totals in a group commit of 32 (read, queue, write at commit): {min(best):.3f} ms of CPU a request")
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1000, 10000, 50000])
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--intake", type=int, metavar="N", help="CPU per intake request over N requests instead")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", action="store_true", help="time the velocity rule's parts instead")
    args = parser.parse_args()
    if args.parts:
        await parts()
        return
    if args.intake:
        await intake_rounds(args.intake, args.rounds)
        return
    print("| stored requests | running: CPU ms/read | wall ms/read | exact query: CPU ms/read | wall ms/read |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes:
            row = await measure(size, args.reads, Path(workdir))
            print("| {:,} | {:.2f} | {:.2f} | {:.2f} | {:.2f} |".format(*row), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
