"""Migration 0011 fills the running totals from the approvals already stored, so requests made before
the upgrade keep counting after it (SQLite, and PostgreSQL when configured)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text

from api.connections.models import Connection
from api.db import Database
from api.migrate import upgrade
from api.policy.usage import compute_totals
from api.usage.read import running_totals
from tests.conftest import PG_URL

CUSTOMER = "cus_QaAbCdEfGhIjK"


def approval(number: int, action: str, status: str, details: dict[str, Any], age: timedelta,
             result: dict[str, Any] | None = None) -> dict[str, Any]:
    at = datetime.now(UTC) - age
    return {"id": f"apr_old{number:04d}", "connection_id": "con_old", "request_hash": "0" * 64, "surface": "native",
            "status": status, "action": action, "summary": "stored before 0011", "details": details,
            "changes": {}, "expires_at": at + timedelta(days=2), "approvers": [], "required_approvals": 1,
            "metadata": {}, "extra": {}, "execute": True,
            "execution_status": "succeeded" if result else "not_requested",
            "execution_result": result, "created_at": at, "updated_at": at, "version": 1, "revision": 1}


def stored() -> list[dict[str, Any]]:
    """Built when the test runs: their ages are counted from then."""
    return [
        approval(1, "issue_refund", "pending", {"charge_id": "ch_1", "amount_cents": 1500, "currency": "usd",
                                                "customer_id": CUSTOMER}, timedelta(minutes=3)),
        approval(2, "issue_refund", "approved", {"charge_id": "ch_2", "currency": "usd", "customer_id": CUSTOMER},
                 timedelta(hours=5, minutes=17), result={"id": "re_2", "amount": 4200, "status": "succeeded"}),
        approval(3, "issue_refund", "rejected", {"charge_id": "ch_3", "amount_cents": 9900, "currency": "usd",
                                                 "customer_id": CUSTOMER}, timedelta(hours=1)),
        approval(4, "create_payout", "pending", {"amount_cents": 7000, "currency": "eur"}, timedelta(hours=23)),
        approval(5, "issue_refund", "approved", {"charge_id": "ch_5", "amount_cents": 800, "currency": "usd",
                                                 "customer_id": CUSTOMER}, timedelta(hours=30)),
    ]


async def _at_0009(url: str) -> None:
    db = Database(url)
    try:
        if not db.is_sqlite:
            async with db.engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        await upgrade(db.engine, "0009")
        async with db.engine.begin() as connection:
            def insert(sync: Any) -> None:
                # The tables as they were at 0009, whatever the models say now.
                meta = sa.MetaData()
                connections = sa.Table("connections", meta, autoload_with=sync)
                approvals = sa.Table("approvals", meta, autoload_with=sync)
                for column in ("details", "changes", "approvers", "metadata", "extra", "execution_result"):
                    approvals.c[column].type = sa.JSON() if db.is_sqlite else approvals.c[column].type
                sync.execute(connections.insert().values(id="con_old", name="old", key_prefix="cq_old",
                                                         key_hash="1" * 64, webhook_secret="whsec_old",
                                                         created_at=datetime.now(UTC)))
                sync.execute(approvals.insert(), stored())
            await connection.run_sync(insert)
    finally:
        await db.close()


async def test_stored_approvals_keep_counting_after_the_upgrade(tmp_path: Path):
    url = PG_URL or f"sqlite+aiosqlite:///{tmp_path / 'before.db'}"
    await _at_0009(url)
    db = Database(url)
    try:
        await upgrade(db.engine)
        async with db.read() as session:
            connection = await session.get(Connection, "con_old")
            now = datetime.now(UTC)
            for action in ("issue_refund", "create_payout"):
                for details in ({}, {"currency": "usd", "customer_id": CUSTOMER}, {"currency": "eur"}):
                    exact = await compute_totals(session, connection, action, details, now)
                    assert await running_totals(session, connection, action, details, now) == exact
            totals = await running_totals(session, connection, "issue_refund", {"customer_id": CUSTOMER}, now)
    finally:
        await db.close()
    # The pending refund and the whole refund Stripe executed; not the rejected one, nor the old one.
    assert (totals.customer.refunds_24h_count, totals.customer.refunds_24h_cents) == (2, 1500 + 4200)
    assert (totals.connection.payouts_24h_count, totals.connection.payouts_24h_cents) == (1, 7000)
