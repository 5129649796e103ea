"""Rotating a Connection's key and webhook secret from the CLI, seen by agents over HTTP.

The old key keeps working on both APIs for the grace period and is refused after it; during a secret's
grace, callbacks carry a signature for each secret, so a receiver verifying with either accepts them.
The grace is measured on the service's clock, which these tests move.
"""

import asyncio
import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from api.audit.models import AuditEvent
from api.connections.auth import CACHE_SECONDS
from tests.conftest import REFUND
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.operator_cli import operator_cli, this_operator
from tests.test_callbacks import verified

COMPAT_REQUEST = {"action": "issue_refund", "summary": REFUND["summary"], "details": REFUND["details"]}


async def can_use(client, key: str) -> tuple[int, int]:
    """The status of one native and one compatible call made with `key`."""
    native = await client.get("/v1/approvals", headers={"Authorization": f"Bearer {key}"})
    compat = await client.post("/api/approvals/request", json=COMPAT_REQUEST, headers={"x-api-key": key})
    return native.status_code, compat.status_code


async def audit_entries(container, event: str) -> list[AuditEvent]:
    async with container.db.read() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.event == event))).all())


def rotate(database_url: str, what: str, connection_id: str, *args: str) -> dict[str, str]:
    result = operator_cli(database_url, "connections", what, connection_id, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def receiver(connection) -> CallbackReceiver:
    return CallbackReceiver(connection["secret"])  # the agent's endpoint still knows only the old secret


@pytest.fixture
def hook_url(receiver) -> str:
    with serve(receiver.app) as base_url:
        yield f"{base_url}/hooks/cheqpoint"


# ---- keys ------------------------------------------------------------------------------------------------

async def test_the_old_key_works_through_the_grace_then_is_refused(client, container, clock, connection,
                                                                   database_url):
    old = connection["key"]
    rotated = rotate(database_url, "rotate-key", connection["id"], "--grace", "24h")
    new = rotated["key"]
    assert set(rotated) == {"id", "key", "previousKeyValidUntil"} and new.startswith("cq_") and new != old
    assert await can_use(client, new) == (200, 200)
    assert await can_use(client, old) == (200, 200)
    listing = operator_cli(database_url, "connections", "list", "--json")
    (listed,) = json.loads(listing.stdout)
    assert listed["keyPrefix"] == new[:9] and listed["previousKeyValidUntil"] == rotated["previousKeyValidUntil"]
    assert new not in listing.stdout and old not in listing.stdout

    clock.advance(hours=23)
    assert await can_use(client, old) == (200, 200)
    clock.advance(hours=1, minutes=5)  # the CLI process stamped the grace on the wall clock, a little later
    assert await can_use(client, old) == (401, 401)
    assert await can_use(client, new) == (200, 200)

    (entry,) = await audit_entries(container, "connection.key_rotated")
    assert {k: entry.actor[k] for k in ("type", "id", "host")} == this_operator()
    assert entry.after["keyPrefix"] == new[:9] and entry.before["keyPrefix"] == old[:9]
    assert old not in json.dumps([entry.before, entry.after]) and new not in json.dumps(entry.after)


async def test_without_grace_the_old_key_stops_at_once_and_a_second_rotation_drops_the_first(
        client, connection, database_url):
    first = rotate(database_url, "rotate-key", connection["id"], "--grace", "1h")["key"]
    second = rotate(database_url, "rotate-key", connection["id"], "--grace", "0")
    assert second["previousKeyValidUntil"] is None
    await asyncio.sleep(CACHE_SECONDS)  # another process rotated it: the server's key cache lets go within this
    assert await can_use(client, connection["key"]) == (401, 401)  # its grace was replaced
    assert await can_use(client, first) == (401, 401)
    assert await can_use(client, second["key"]) == (200, 200)


def test_rotation_refuses_bad_input_with_a_code_and_one_line(connection, database_url):
    cases = [
        (("rotate-key", connection["id"], "--grace", "soon"), 2, "--grace"),
        (("rotate-secret", connection["id"], "--grace", "-1h"), 2, "--grace"),
        (("rotate-key", connection["id"], "--grace", "90d"), 2, "at most 30d"),
        (("rotate-key", "con_missing"), 3, "no Connection"),
    ]
    for args, code, words in cases:
        result = operator_cli(database_url, "connections", *args)
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert operator_cli(database_url, "connections", "revoke", connection["id"]).returncode == 0
    revoked = operator_cli(database_url, "connections", "rotate-secret", connection["id"])
    assert revoked.returncode == 4 and "revoked" in revoked.stderr


# ---- webhook secrets -------------------------------------------------------------------------------------

async def test_callbacks_carry_both_signatures_during_the_grace(client, auth, container, clock, connection,
                                                                database_url, receiver, hook_url):
    old = connection["secret"]
    native = (await client.post("/v1/approvals", json={**REFUND, "callbackUrl": hook_url, "execute": False},
                                headers=auth)).json()["approvalId"]
    compat = (await client.post("/api/approvals/request", json={**COMPAT_REQUEST, "webhookUrl": hook_url},
                                headers={"x-api-key": connection["key"]})).json()["id"]
    rotated = rotate(database_url, "rotate-secret", connection["id"], "--grace", "24h")
    new = rotated["webhookSecret"]
    assert set(rotated) == {"id", "webhookSecret", "previousSecretValidUntil"} and new != old

    for approval_id in (native, compat):
        assert (await client.post(f"/v1/approvals/{approval_id}/cancel", headers=auth)).status_code == 200
    await container.worker.drain()
    events = receiver.wait_for_events(2)
    assert receiver.rejected == []  # the receiver holding the old secret accepted both
    for event in events:
        signatures = event.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        verified(event, new)  # and one holding the new secret would too
        verified(event, old)
    compat_event = next(e for e in events if "x-cheqpoint-signature" in e.headers)
    assert compat_event.headers["x-cheqpoint-signature"] == hmac.new(
        new.encode(), compat_event.body, hashlib.sha256).hexdigest()

    # After the grace only the new secret signs: the old receiver refuses, the new secret verifies.
    clock.advance(hours=24, minutes=5)
    later = (await client.post("/v1/approvals", json={**REFUND, "callbackUrl": hook_url, "execute": False},
                               headers=auth)).json()["approvalId"]
    assert (await client.post(f"/v1/approvals/{later}/cancel", headers=auth)).status_code == 200
    await container.worker.drain()
    last = receiver.attempts[-1]
    assert last.outcome == "bad_signature" and len(last.headers["webhook-signature"].split(" ")) == 1
    from standardwebhooks import Webhook

    Webhook(new).verify(last.body, {k: v for k, v in last.headers.items() if k.startswith("webhook-")})

    (entry,) = await audit_entries(container, "connection.secret_rotated")
    assert entry.actor["host"] == this_operator()["host"]
    assert new not in json.dumps(entry.after) and old not in json.dumps(entry.before)
