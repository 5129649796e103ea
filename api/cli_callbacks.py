"""Operators' commands for callback deliveries: what was sent, what failed, and sending again."""

import json
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import service as audit
from api.audit.service import os_operator
from api.callbacks import service
from api.cli import app, container, run

callbacks_app = typer.Typer(help="Callback deliveries to agents and their attempts.", no_args_is_help=True)
app.add_typer(callbacks_app, name="callbacks")

_ERROR_WIDTH = 80


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


@callbacks_app.command("list")
def callbacks_list(
    failed: Annotated[bool, typer.Option("--failed", help="Only deliveries that gave up.")] = False,
    approval: Annotated[str | None, typer.Option(help="Only this approval's deliveries.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Deliveries, newest first: webhook-id, approval, event, status, attempts and the last error."""
    async def listing() -> list[Any]:
        async with container() as c:
            return await service.list_deliveries(c.db, failed_only=failed, approval_id=approval, limit=limit)

    rows = run(listing())
    if as_json:
        typer.echo(json.dumps({"data": [_delivery_json(d) for d in rows]}, indent=2))
        return
    if not rows:
        typer.echo("no failed callback deliveries" if failed else "no callback deliveries")
        return
    for d in rows:
        error = (d.last_error or "-")[:_ERROR_WIDTH]
        typer.echo(f"{d.id}  {d.approval_id}  {d.event_type:<26}  {d.status:<9}  {d.attempts:>2} attempts  {error}")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _delivery_json(d: Any) -> dict[str, Any]:
    return {"id": d.id, "approvalId": d.approval_id, "eventType": d.event_type, "url": d.url, "status": d.status,
            "attempts": d.attempts, "lastError": d.last_error, "createdAt": _iso(d.created_at),
            "deliveredAt": _iso(d.delivered_at)}


@callbacks_app.command("show")
def callbacks_show(
    delivery_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """One delivery and every attempt made."""
    delivery, attempts = run(_show(delivery_id))
    if as_json:
        typer.echo(json.dumps({**_delivery_json(delivery), "attemptLog": [
            {"attempt": a.attempt, "at": _iso(a.at), "statusCode": a.status_code, "durationMs": a.duration_ms,
             "error": a.error} for a in attempts]}, indent=2))
        return
    typer.echo(f"{delivery.id}  {delivery.event_type}  {delivery.status}")
    typer.echo(f"  approval:  {delivery.approval_id}")
    typer.echo(f"  url:       {delivery.url}")
    typer.echo(f"  created:   {_when(delivery.created_at)}   delivered: {_when(delivery.delivered_at)}")
    for a in attempts:
        status = str(a.status_code) if a.status_code is not None else "---"  # no HTTP answer at all
        typer.echo(f"  #{a.attempt:<2} {_when(a.at)}  {status}  {a.duration_ms:>6} ms  {a.error or 'ok'}")


async def _show(delivery_id: str) -> Any:
    async with container() as c:
        return await service.get_delivery(c.db, delivery_id)


@callbacks_app.command("redeliver")
def callbacks_redeliver(delivery_id: str) -> None:
    """Send a failed (or delivered) callback again, under the same webhook-id."""
    actor = os_operator()

    async def again() -> Any:
        async with container() as c:
            delivery = await service.redeliver(c.db, delivery_id)

            async def trail(session: AsyncSession) -> None:
                audit.record(session, "callback.redelivered", approval_id=delivery.approval_id,
                             connection_id=delivery.connection_id, actor=actor,
                             detail={"deliveryId": delivery.id, "event": delivery.event_type, "url": delivery.url})

            await c.db.write(trail)
            return delivery

    delivery = run(again())
    typer.echo(f"{delivery.id}: queued for redelivery to {delivery.url}")
