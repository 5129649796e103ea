"""compose.yaml's topology without Docker (`cheqpoint cluster`): two API replicas behind one port and a
worker, on PostgreSQL. A request held through the balancer is settled through the other replica and
released across processes; the worker delivers its callback; SIGTERM stops the whole cluster with 0.
And `db upgrade`, run by several replicas at once, migrates once and fails none of them."""

import asyncio
import re
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from api.db import Database
from tests.conftest import REFUND
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.ops_processes import CHEQPOINT, ROOT, Process, environment, free_port, new_connection, wait_for

pytestmark = pytest.mark.postgres


def test_two_replicas_and_a_worker_behind_one_port(database_url, tmp_path: Path):
    conn = new_connection(database_url)
    receiver = CallbackReceiver(conn["webhookSecret"])
    port = free_port()
    cluster = Process(["cluster", "--port", str(port), "--replicas", "2"], environment(database_url),
                      tmp_path / "cluster.log")
    front = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "cluster: serving on" in cluster.log(), timeout=60, what="the cluster to start")
        replicas = re.findall(r"cluster: api-\d pid \d+ (http://\S+)", cluster.log())
        assert len(replicas) == 2 and "cluster: worker pid" in cluster.log()
        for url in [front, *replicas]:
            wait_for(lambda url=url: _up(url), timeout=60, what=f"{url} to answer")
        headers = {"Authorization": f"Bearer {conn['key']}"}
        with serve(receiver.app) as hooks:
            answer: dict[str, httpx.Response] = {}

            def agent() -> None:  # held by the second replica
                answer["held"] = httpx.post(f"{replicas[1]}/v1/approvals", headers=headers, timeout=60, json={
                    **REFUND, "timeoutMs": 30_000, "execute": False, "callbackUrl": f"{hooks}/hook"})

            thread = threading.Thread(target=agent, daemon=True)
            thread.start()

            def pending() -> list[str]:
                listing = httpx.get(f"{front}/v1/approvals?status=pending", headers=headers, timeout=5)
                return [a["approvalId"] for a in listing.json()["data"]]

            wait_for(lambda: bool(pending()), what="the held request")
            [approval_id] = pending()
            # Settled through the first replica: the hold on the second is released across processes.
            cancelled = httpx.post(f"{replicas[0]}/v1/approvals/{approval_id}/cancel", headers=headers, timeout=10)
            assert cancelled.status_code == 200, cancelled.text
            thread.join(timeout=15)
            assert answer["held"].status_code == 200
            assert answer["held"].json()["status"] == "cancelled"
            [event] = receiver.wait_for_events(1, timeout=15)  # the worker process delivered the callback
            assert event.payload["type"] == "approval.cancelled"
        code = cluster.stop(timeout=40)
    finally:
        cluster.kill()
    assert code == 0, cluster.log()
    assert "cluster: stopped" in cluster.log()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_cluster_refuses_sqlite(tmp_path: Path):
    result = subprocess.run([CHEQPOINT, "cluster"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env=environment(f"sqlite+aiosqlite:///{tmp_path}/x.db"))
    assert result.returncode == 2 and "cluster needs PostgreSQL" in result.stderr


async def _reset_schema(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await db.close()


async def _version(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.engine.connect() as connection:
            return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    finally:
        await db.close()


def test_replicas_migrating_at_once_all_succeed(database_url):
    asyncio.run(_reset_schema(database_url))  # an empty database, as on a first deployment
    env = environment(database_url)
    runs = [subprocess.Popen([CHEQPOINT, "db", "upgrade"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    assert all(code == 0 for code, _ in results), results
    heads = asyncio.run(_version(database_url))
    assert len(heads) == 1
