"""The tamper-evident audit trail: what is recorded, the hash chain, `audit verify` and `audit export`.

Requests go through the HTTP API; the chain is checked by the `cheqpoint` command in its own process;
tampering is done the way an intruder with database access would, with raw SQL.
"""

import csv
import io
import itertools
import json
import sqlite3
import threading
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from api.audit.models import AuditEvent
from api.main import create_app
from tests.conftest import REFUND
from tests.fakes.server import serve
from tests.operator_cli import operator_cli, this_operator

FULL_REQUEST = {**REFUND, "agentName": "refund-bot", "riskLevel": "medium", "priority": "urgent",
                "metadata": {"ticket": "T-1042", "region": "eu"}, "callbackUrl": "http://127.0.0.1:9/cheqpoint",
                "execute": False}


async def trail(container) -> list[AuditEvent]:
    async with container.db.read() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())


async def some_activity(client, auth) -> None:
    """A few approvals, one cancelled: a dozen or so entries in the trail."""
    body = {**REFUND, "execute": False}
    first = (await client.post("/v1/approvals", json=body, headers=auth)).json()["approvalId"]
    await client.post("/v1/approvals", json=body, headers=auth)
    assert (await client.post(f"/v1/approvals/{first}/cancel", headers=auth)).status_code == 200


def sqlite_path(database_url: str) -> str:
    return database_url.removeprefix("sqlite+aiosqlite:///")


# ---- what is recorded ----------------------------------------------------------------------------------

async def test_the_request_is_recorded_in_full_at_creation(client, auth, container, database_url):
    response = await client.post("/v1/approvals", json=FULL_REQUEST, headers=auth)
    assert response.status_code == 202, response.text
    approval_id = response.json()["approvalId"]
    created = [e for e in await trail(container) if e.event == "approval.created"]
    assert len(created) == 1 and created[0].approval_id == approval_id
    request = created[0].detail["request"]
    for field in ("action", "summary", "details", "justification", "callbackUrl", "metadata", "agentName",
                  "riskLevel", "priority", "execute"):
        assert request[field] == FULL_REQUEST[field], field
    assert created[0].detail["surface"] == "native"


def test_operator_actions_name_the_os_user_and_host(database_url):
    made = operator_cli(database_url, "connections", "create", "--name", "ops-made", "--json")
    assert made.returncode == 0, made.stderr
    exported = operator_cli(database_url, "audit", "export")
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    actor = next(e["actor"] for e in entries if e["event"] == "connection.created")
    assert {k: actor[k] for k in ("type", "id", "host")} == this_operator()
    # Keys and secrets never reach the trail, only a prefix and a fingerprint.
    secret = json.loads(made.stdout)["webhookSecret"]
    assert secret not in exported.stdout and json.loads(made.stdout)["key"] not in exported.stdout


async def test_a_redelivery_names_the_operator(client, auth, container, connection, database_url):
    from api.callbacks.models import CallbackDelivery
    from tests.fakes.receiver import CallbackReceiver

    receiver = CallbackReceiver(connection["secret"])
    with serve(receiver.app) as hooks:
        body = {**REFUND, "execute": False, "callbackUrl": f"{hooks}/cheqpoint"}
        approval_id = (await client.post("/v1/approvals", json=body, headers=auth)).json()["approvalId"]
        await client.post(f"/v1/approvals/{approval_id}/cancel", headers=auth)
        await container.worker.drain()
        receiver.wait_for_events(1)
    async with container.db.read() as session:
        delivery = (await session.scalars(select(CallbackDelivery))).one()
    result = operator_cli(database_url, "callbacks", "redeliver", delivery.id)
    assert result.returncode == 0, result.stderr
    (entry,) = [e for e in await trail(container) if e.event == "callback.redelivered"]
    assert {k: entry.actor[k] for k in ("type", "id", "host")} == this_operator()
    assert entry.approval_id == approval_id and entry.detail["deliveryId"] == delivery.id


# ---- the chain -------------------------------------------------------------------------------------------

async def test_an_intact_trail_verifies(client, auth, container, database_url):
    await some_activity(client, auth)
    entries = await trail(container)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    result = operator_cli(database_url, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert f"intact: {len(entries)} entries" in result.stdout


async def test_a_changed_entry_is_named(client, auth, container, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("raw tampering is shown on SQLite; PostgreSQL refuses it (test_postgres_refuses_…)")
    await some_activity(client, auth)
    entries = await trail(container)
    victim = next(e for e in entries if e.event == "approval.cancelled")
    with sqlite3.connect(sqlite_path(database_url)) as db:
        db.execute("UPDATE audit_events SET actor = ? WHERE id = ?",
                   (json.dumps({"type": "slack_user", "id": "UALICE"}), victim.id))
    result = operator_cli(database_url, "audit", "verify")
    assert result.returncode == 1
    assert f"entry {victim.seq} ({victim.id}) does not verify" in result.stderr
    assert "changed" in result.stderr and "Traceback" not in result.stderr


async def test_a_rewritten_entry_with_a_fresh_hash_breaks_the_next_link(client, auth, container, database_url):
    """An intruder who recomputes the changed entry's own hash still breaks the entry after it."""
    if not database_url.startswith("sqlite"):
        pytest.skip("raw tampering is shown on SQLite")
    from api.audit.chain import entry_hash

    await some_activity(client, auth)
    entries = await trail(container)
    victim, following = entries[1], entries[2]
    victim.detail = {"forged": True}
    with sqlite3.connect(sqlite_path(database_url)) as db:
        db.execute("UPDATE audit_events SET detail = ?, hash = ? WHERE id = ?",
                   (json.dumps(victim.detail), entry_hash(victim), victim.id))
    result = operator_cli(database_url, "audit", "verify")
    assert result.returncode == 1
    assert f"entry {following.seq} ({following.id}) does not verify" in result.stderr


async def test_a_deleted_entry_is_named(client, auth, container, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("raw tampering is shown on SQLite")
    await some_activity(client, auth)
    entries = await trail(container)
    with sqlite3.connect(sqlite_path(database_url)) as db:
        db.execute("DELETE FROM audit_events WHERE id = ?", (entries[1].id,))
    result = operator_cli(database_url, "audit", "verify")
    assert result.returncode == 1
    assert f"entry 3 ({entries[2].id}) does not verify" in result.stderr
    assert "entries 2..2 were removed" in result.stderr


async def test_entries_removed_from_the_end_are_caught_against_a_recorded_head(client, auth, container,
                                                                               database_url):
    """The last entries have no successor to break: an auditor keeps the head `verify` printed."""
    if not database_url.startswith("sqlite"):
        pytest.skip("raw tampering is shown on SQLite")
    await some_activity(client, auth)
    entries = await trail(container)
    head = operator_cli(database_url, "audit", "verify").stdout.split("head ")[1].split()
    assert head == [str(entries[-1].seq), entries[-1].hash]
    with sqlite3.connect(sqlite_path(database_url)) as db:
        db.execute("DELETE FROM audit_events WHERE id = ?", (entries[-1].id,))
    assert operator_cli(database_url, "audit", "verify").returncode == 0  # the chain alone cannot tell
    result = operator_cli(database_url, "audit", "verify", "--expect-head", f"{head[0]}:{head[1]}")
    assert result.returncode == 1
    assert f"entry {head[0]} is missing" in result.stderr
    intact = operator_cli(database_url, "audit", "verify", "--expect-head", f"{entries[-2].seq}:{entries[-2].hash}")
    assert intact.returncode == 0, intact.stderr
    bad = operator_cli(database_url, "audit", "verify", "--expect-head", "nonsense")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.postgres
async def test_postgres_refuses_update_and_delete_and_still_verifies(client, auth, container, database_url):
    await some_activity(client, auth)
    entries = await trail(container)
    for statement in ("UPDATE audit_events SET event = 'approval.approved' WHERE seq = 2",
                      "DELETE FROM audit_events WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with container.db.engine.begin() as connection:
                await connection.execute(text(statement))
    assert operator_cli(database_url, "audit", "verify").returncode == 0
    # Someone who can switch the trigger off (the table's owner) is still caught by the chain.
    async with container.db.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        await connection.execute(text("UPDATE audit_events SET event = 'approval.approved' WHERE seq = 2"))
        await connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
    result = operator_cli(database_url, "audit", "verify")
    assert result.returncode == 1 and f"entry 2 ({entries[1].id}) does not verify" in result.stderr


def test_the_chain_holds_under_concurrent_writers(settings, database_url):
    """Two replicas of the service and CLI processes write at once (on SQLite: two writers and other
    processes on one file; on PostgreSQL: separate connection pools, as replicas have)."""
    made = operator_cli(database_url, "connections", "create", "--name", "load", "--json")
    headers = {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}
    statuses: list[int] = []
    lock = threading.Lock()

    def agent(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            for _ in range(8):
                status = http.post("/v1/approvals", json={**REFUND, "execute": False}, headers=headers).status_code
                with lock:
                    statuses.append(status)

    def operator(n: int) -> None:
        result = operator_cli(database_url, "connections", "create", "--name", f"op-{n}")
        with lock:
            statuses.append(200 if result.returncode == 0 else result.returncode)

    with serve(create_app(settings)) as first, serve(create_app(settings)) as second:
        threads = [threading.Thread(target=agent, args=(url,)) for url in (first, second, first, second)]
        threads += [threading.Thread(target=operator, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert statuses.count(202) == 32 and statuses.count(200) == 3, statuses
    result = operator_cli(database_url, "audit", "verify")
    assert result.returncode == 0, result.stderr
    # 32 requests + 4 Connections, each with its entry; nothing lost, no number used twice.
    assert "intact: 36 entries" in result.stdout


# ---- export ----------------------------------------------------------------------------------------------

async def test_export_as_jsonl_and_csv_with_since(client, auth, container, clock, database_url):
    clock.advance(days=-40)
    await client.post("/v1/approvals", json={**REFUND, "execute": False}, headers=auth)
    clock.advance(days=40)
    await some_activity(client, auth)
    entries = await trail(container)

    everything = operator_cli(database_url, "audit", "export")
    assert everything.returncode == 0, everything.stderr
    lines = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [line["seq"] for line in lines] == [e.seq for e in entries]
    assert lines[1]["prevHash"] == lines[0]["hash"] and lines[0]["event"] == "connection.created"

    recent = operator_cli(database_url, "audit", "export", "--since", "30d", "--format", "csv")
    assert recent.returncode == 0, recent.stderr
    rows = list(csv.DictReader(io.StringIO(recent.stdout)))
    old = {e.id for e in entries if e.at < clock.now - timedelta(days=30)}
    assert old and not old & {row["id"] for row in rows}
    assert len(rows) == len(entries) - len(old)
    assert json.loads(rows[0]["actor"])["type"] in ("connection", "operator", "system")

    for args in (("--format", "xml"), ("--since", "soon")):
        refused = operator_cli(database_url, "audit", "export", *args)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


# ---- migrating a trail written before the chain ----------------------------------------------------------

async def test_entries_written_before_the_chain_join_it_when_migrated(tmp_path):
    from api.db import Database
    from api.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    try:
        await upgrade(db.engine, "0004")
        async with db.engine.begin() as connection:
            for n, at in enumerate(("2026-01-02 10:00:00.000001", "2026-01-01 09:00:00", "2026-01-03 08:00:00")):
                await connection.execute(text("INSERT INTO audit_events (id, at, event, actor, detail) "
                                              "VALUES (:id, :at, :event, :actor, :detail)"),
                    {"id": f"evt_old{n}", "at": at, "event": "approval.created", "actor": '{"type": "connection"}',
                     "detail": json.dumps({"n": n, "note": "é"})})
        await upgrade(db.engine)
    finally:
        await db.close()
    result = operator_cli(url, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "intact: 3 entries" in result.stdout
    lines = [json.loads(line) for line in operator_cli(url, "audit", "export").stdout.splitlines()]
    assert [line["id"] for line in lines] == ["evt_old1", "evt_old0", "evt_old2"]  # in the order written
    assert [line["seq"] for line in lines] == [1, 2, 3]
