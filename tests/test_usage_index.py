"""The hourly prune of the velocity counters finds the old rows by an index on `starts_at`, not by
reading the whole table: the primary key leads with scope, subject and action, so it cannot serve
`starts_at < cutoff`. Checked on the migrated schema, with the statement the prune really sends."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, text

from api.db import Database
from api.usage.models import UsageTotal
from api.usage.prune import delete_batch

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def _rows(hours: int) -> list[dict[str, Any]]:
    return [{"scope": "connection", "subject": f"conn_{n % 7}", "action": "issue_refund", "currency": "usd",
             "span": 3600, "starts_at": NOW - timedelta(hours=h), "count": 1, "amount": 100}
            for h in range(hours) for n in range(7)]


async def test_the_prune_reads_old_counters_by_the_starts_at_index(database_url):
    db = Database(database_url)
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            sent.append((statement, parameters))

    try:
        await db.write(lambda session: session.execute(insert(UsageTotal), _rows(48)))
        event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
        deleted = await db.write(lambda session: delete_batch(session, NOW - timedelta(hours=25)))
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
        assert deleted == 7 * 22  # what the plan below is about does delete the old rows

        [(statement, parameters)] = sent
        async with db.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            if db.engine.dialect.name == "sqlite":
                plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                lines = [str(row[-1]) for row in plan.all()]
            else:
                # A small table is cheapest to scan; with scans priced out the plan shows whether an
                # index can serve the condition at all.
                await connection.execute(text("SET LOCAL enable_seqscan = off"))
                driver = raw.driver_connection
                lines = [row[0] for row in await driver.fetch(f"EXPLAIN {statement}", *parameters)]
        assert any("ix_usage_totals_starts_at" in line for line in lines), lines
    finally:
        await db.close()
