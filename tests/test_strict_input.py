"""Strict input through the real HTTP API: non-finite numbers, deep nesting, chunked oversize bodies,
and settings that refuse empty secrets (issue 10, items 8 and 13)."""

import json
import os
import subprocess
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text

from api.approvals.actors import Actor
from api.approvals.models import Approval
from api.config import MAX_JSON_DEPTH, Settings
from tests.conftest import PG_URL, REFUND
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.test_callbacks import verified
from tests.test_cli import CLI, cheqpoint

JSON = {"Content-Type": "application/json"}


async def stored(container) -> int:
    async with container.db.read() as session:
        return await session.scalar(select(func.count()).select_from(Approval))


def raw(body: dict, literal: str) -> bytes:
    """The body with the string "<NONFINITE>" swapped for a bare literal Python's json would read."""
    return json.dumps(body).replace('"<NONFINITE>"', literal).encode()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_are_refused_on_the_native_api(client, auth, container, literal):
    body = {**REFUND, "details": {**REFUND["details"], "evidence": [1, {"score": "<NONFINITE>"}]}}
    response = await client.post("/v1/approvals", content=raw(body, literal), headers={**auth, **JSON})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["details", "evidence", 1, "score"]
    assert "details.evidence.1.score" in problem["detail"]
    assert await stored(container) == 0


@pytest.mark.parametrize("field", ["details", "metadata", "trace"])
async def test_non_finite_numbers_are_refused_on_the_compatible_api(client, connection, container, field):
    body = {"action": "send_email", "summary": "Send it", "details": {"to": "a@b.c"}, field: {"x": "<NONFINITE>"}}
    response = await client.post("/api/approvals/request", content=raw(body, "NaN"),
                                 headers={"x-api-key": connection["key"], **JSON})
    assert response.status_code == 422, response.text
    assert f"{field}.x" in response.json()["error"]
    assert await stored(container) == 0


async def _poison(container, approval_id: str) -> None:
    """A row stored before intake refused NaN (SQLite keeps JSON as text, so it can hold one)."""
    async with container.db.engine.begin() as connection:
        await connection.execute(text("UPDATE approvals SET details = :details WHERE id = :id"),
                                 {"details": '{"charge_id": "ch_1", "x": NaN, "y": [Infinity]}', "id": approval_id})


@pytest.fixture
def receiver(connection) -> CallbackReceiver:
    return CallbackReceiver(connection["secret"])


@pytest.fixture
def hook_url(receiver) -> AsyncIterator[str]:
    with serve(receiver.app) as base_url:
        yield f"{base_url}/hooks/cheqpoint"


@pytest.mark.skipif(bool(PG_URL), reason="PostgreSQL's jsonb cannot hold NaN: no such rows exist there")
async def test_rows_holding_non_finite_numbers_are_readable_everywhere(client, auth, connection, container,
                                                                      receiver, hook_url):
    body = {**REFUND, "execute": False, "callbackUrl": hook_url}
    approval_id = (await client.post("/v1/approvals", json=body, headers=auth)).json()["approvalId"]
    await _poison(container, approval_id)
    expected = {"charge_id": "ch_1", "x": None, "y": [None]}

    one = await client.get(f"/v1/approvals/{approval_id}", headers=auth)
    assert one.status_code == 200 and one.json()["details"] == expected
    listed = await client.get("/v1/approvals", headers=auth)
    assert listed.status_code == 200 and listed.json()["data"][0]["details"] == expected
    compat = await client.get(f"/api/approvals/{approval_id}", headers={"x-api-key": connection["key"]})
    assert compat.status_code == 200 and compat.json()["details"] == expected

    await container.decisions.decide(approval_id, Actor("operator", "UOPS", "ops"), "reject", note="no")
    await container.worker.drain()
    (event,) = receiver.events
    assert b"NaN" not in event.body and b"Infinity" not in event.body
    assert verified(event, connection["secret"])["data"]["details"] == expected


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 10_000])
@pytest.mark.parametrize("path", ["/v1/approvals", "/api/webhooks/inbound"])
async def test_deeply_nested_json_is_refused_with_a_clear_message(client, auth, connection, container, depth, path):
    nested = "[" * depth + "]" * depth
    body = json.dumps({**REFUND, "details": {"charge_id": "ch_1", "deep": "<DEEP>"}}).replace('"<DEEP>"', nested)
    headers = {**auth, "x-api-key": connection["key"], **JSON}
    response = await client.post(path, content=body.encode(), headers=headers)
    assert response.status_code == 400, response.text
    message = response.json().get("detail") or response.json()["error"]
    assert f"at most {MAX_JSON_DEPTH} levels" in message
    assert await stored(container) == 0


async def test_nesting_within_the_bound_is_accepted(client, auth):
    inner: object = "leaf"
    for _ in range(MAX_JSON_DEPTH - 2):  # `details` and `deep` are the first two levels
        inner = [inner]
    body = {"action": "record_note", "summary": "Keep this", "execute": False, "details": {"deep": inner}}
    response = await client.post("/v1/approvals", json=body, headers=auth)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("path", ["/v1/approvals", "/api/approvals/request"])
async def test_chunked_bodies_over_the_limit_get_413(client, auth, connection, container, path):
    async def chunks():
        yield b'{"action": "issue_refund", "summary": "x", "details": {"pad": "'
        for _ in range(300):
            yield b"a" * 1024
        yield b'"}}'

    headers = {**auth, "x-api-key": connection["key"], **JSON}
    response = await client.post(path, content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers  # sent chunked: the size was not announced
    assert response.status_code == 413, response.text
    assert await stored(container) == 0


async def test_chunked_bodies_over_the_limit_get_413_on_the_slack_endpoint(make_settings, clock, caplog):
    from tests.slack_helpers import slack_harness

    async def chunks():
        for _ in range(300):
            yield b"payload=" + b"a" * 1024

    async with slack_harness(make_settings, clock) as slack:
        response = await slack.http.post("/slack/events", content=chunks(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413, response.text
    assert "Traceback" not in caplog.text


SECRETS = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "STRIPE_SECRET_KEY",
           "CHEQPOINT_CONNECTION_KEY"]


@pytest.mark.parametrize("name", SECRETS)
def test_empty_secrets_are_refused_with_exit_2(database_url, name):
    env = {**os.environ, "DATABASE_URL": database_url, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
           "CHEQPOINT_REVIEW_CHANNEL": "C1", "CHEQPOINT_APPROVERS": "U1", name: ""}
    result = subprocess.run([*CLI, "connections", "list"], capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    assert result.returncode == 2, result.stderr
    assert name in result.stderr and "empty" in result.stderr


def test_an_empty_database_url_is_refused_with_exit_2(database_url):
    result = cheqpoint(database_url, "connections", "list", DATABASE_URL="  ")
    assert result.returncode == 2 and "DATABASE_URL" in result.stderr


def test_an_empty_signing_secret_does_not_turn_slack_on():
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET is set but empty"):
        Settings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="", review_channel="C1",
                 approvers=["U1"])


def test_the_database_url_is_a_secret(database_url):
    url = "postgresql+asyncpg://cheqpoint:hunter2@127.0.0.1:1/cheqpoint"
    settings = Settings(_env_file=None, database_url=url)
    assert settings.database_url == url  # what connects still reads it
    shown = [repr(settings), str(settings), json.dumps(settings.model_dump(mode="json")), *settings.describe()]
    assert not any("hunter2" in text for text in shown)
    result = cheqpoint(database_url, "connections", "list", DATABASE_URL=url, CHEQPOINT_APPROVERS="not-an-id")
    assert result.returncode == 2 and "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize("text", ["a\\u0000b", "\\ud800", "x\\udfff"])
@pytest.mark.parametrize("path", ["/v1/approvals", "/api/approvals/request"])
async def test_text_that_cannot_be_stored_is_refused(client, auth, connection, container, text, path):
    # PostgreSQL stores neither NUL nor unpaired surrogates (a 500 there before); UTF-8 cannot encode the latter.
    body = json.dumps({**REFUND, "execute": False, "summary": "<TEXT>"}).replace('"<TEXT>"', f'"{text}"')
    response = await client.post(path, content=body.encode(), headers={**auth, "x-api-key": connection["key"], **JSON})
    assert response.status_code == 422, response.text
    assert "summary" in response.text and "NUL" in response.text
    keyed = json.dumps({**REFUND, "details": {"<KEY>": 1}}).replace('"<KEY>"', f'"{text}"')
    response = await client.post(path, content=keyed.encode(), headers={**auth, "x-api-key": connection["key"], **JSON})
    assert response.status_code == 422 and "details" in response.text
    assert await stored(container) == 0


@pytest.mark.parametrize("approval_id", ["apr_%00", "apr_\u00e9", "x" * 300])
async def test_ids_that_are_not_ours_are_not_found(client, auth, connection, approval_id):
    assert (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).status_code == 404
    compat = await client.get(f"/api/approvals/{approval_id}", headers={"x-api-key": connection["key"]})
    assert compat.status_code == 404 and "error" in compat.json()
