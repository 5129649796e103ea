"""Operators' commands for Connections: create, list, revoke, and rotate keys and webhook secrets.

Every change is recorded in the audit trail with the OS user and host that made it.
"""

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from api.audit.service import os_operator
from api.cli import connections_app, container, fail, run
from api.connections import revocation
from api.connections import service as connections
from api.connections.models import Connection
from api.policy.models import parse_duration

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Grace = Annotated[str, typer.Option(help="How long the previous one keeps working: 24h, 30m, 7d, or 0.")]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def parse_grace(text: str) -> timedelta:
    if text.strip() == "0":
        return timedelta(0)
    try:
        grace = parse_duration(text)
    except ValueError as exc:
        fail(f"--grace: {exc}", 2)
    if grace > timedelta(days=30):
        fail("--grace: at most 30d; an old key that works longer is not rotated at all", 2)
    return grace


@connections_app.command("create")
def connections_create(name: Annotated[str, typer.Option(help="What this agent integration is called.")],
                       as_json: JsonFlag = False) -> None:
    """Create a Connection and print its key and webhook secret, once."""
    actor = os_operator()

    async def create() -> connections.NewConnection:
        async with container() as c:
            return await c.db.write(lambda session: connections.create(session, name, actor))

    created = run(create())
    conn = created.connection
    if as_json:
        typer.echo(json.dumps({"id": conn.id, "name": conn.name, "key": created.key,
                               "webhookSecret": conn.webhook_secret}))
        return
    typer.echo(f"Connection {conn.id} ({conn.name})")
    typer.echo(f"  Connection Key:  {created.key}")
    typer.echo(f"  Webhook secret:  {conn.webhook_secret}")
    typer.echo("Store both now: the key is not shown again.")


def _listed(conn: Connection) -> dict[str, Any]:
    return {"id": conn.id, "name": conn.name, "keyPrefix": conn.key_prefix, "createdAt": _iso(conn.created_at),
            "revokedAt": _iso(conn.revoked_at), "previousKeyValidUntil": _iso(conn.previous_key_expires_at),
            "previousSecretValidUntil": _iso(conn.previous_secret_expires_at)}


@connections_app.command("list")
def connections_list(as_json: JsonFlag = False) -> None:
    """List Connections (keys are shown by their prefix only, secrets not at all)."""
    async def listing() -> list[Connection]:
        async with container() as c, c.db.read() as session:
            return await connections.list_all(session)

    rows = run(listing())
    if as_json:
        typer.echo(json.dumps([_listed(conn) for conn in rows]))
        return
    for conn in rows:
        state = f"revoked {conn.revoked_at:%Y-%m-%d %H:%M}" if conn.revoked_at else "active"
        typer.echo(f"{conn.id}  {conn.key_prefix}…  {state:<24}  {conn.name}")


@connections_app.command("revoke")
def connections_revoke(connection_id: str) -> None:
    """Revoke a Connection: its key stops working, its pending approvals are cancelled, and its
    approved work not yet started (executions, callbacks) does not start."""
    actor = os_operator()

    async def revoke() -> revocation.Revoked:
        async with container() as c:
            return await c.db.write(lambda session: revocation.revoke(session, c.effects, connection_id, actor))

    result = run(revoke())
    if result.already:
        typer.echo(f"{connection_id} was already revoked")
        return
    typer.echo(f"revoked {connection_id}; cancelled {len(result.cancelled)} pending approval(s)")
    for approval in result.cancelled:
        typer.echo(f"  {approval.id}  {approval.action}")


@connections_app.command("rotate-key")
def connections_rotate_key(connection_id: str, grace: Grace = "24h", as_json: JsonFlag = False) -> None:
    """A new Connection Key, shown once; the current key keeps working for the grace period."""
    period, actor = parse_grace(grace), os_operator()

    async def rotate() -> connections.Rotated:
        async with container() as c:
            return await c.db.write(lambda session: connections.rotate_key(session, connection_id, period, actor))

    rotated = run(rotate())
    until = _iso(rotated.previous_valid_until)
    if as_json:
        typer.echo(json.dumps({"id": connection_id, "key": rotated.secret, "previousKeyValidUntil": until}))
        return
    typer.echo(f"Connection {connection_id}: new Connection Key {rotated.secret}")
    typer.echo(f"The previous key works until {until}." if until else "The previous key no longer works.")
    typer.echo("Store the new key now: it is not shown again.")


@connections_app.command("rotate-secret")
def connections_rotate_secret(connection_id: str, grace: Grace = "24h", as_json: JsonFlag = False) -> None:
    """A new webhook signing secret, shown once; callbacks carry both signatures for the grace period."""
    period, actor = parse_grace(grace), os_operator()

    async def rotate() -> connections.Rotated:
        async with container() as c:
            return await c.db.write(lambda session: connections.rotate_secret(session, connection_id, period, actor))

    rotated = run(rotate())
    until = _iso(rotated.previous_valid_until)
    if as_json:
        typer.echo(json.dumps({"id": connection_id, "webhookSecret": rotated.secret,
                               "previousSecretValidUntil": until}))
        return
    typer.echo(f"Connection {connection_id}: new webhook secret {rotated.secret}")
    typer.echo(f"Callbacks are signed with both secrets until {until}." if until
               else "Callbacks are signed with the new secret only.")
