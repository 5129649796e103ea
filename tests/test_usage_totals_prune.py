"""Velocity counters no window can read are deleted (issue 14), and the totals stay exact.

Requests come in over HTTP; the clock moves past a day; the next request's commit enqueues the hourly
prune job, which the worker runs. Runs on SQLite and, with CHEQPOINT_TEST_POSTGRES_URL, on PostgreSQL.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from api.connections.models import Connection
from api.outbox.models import Job
from api.policy.usage import compute_totals
from api.usage import prune
from api.usage.models import UsageTotal
from api.usage.read import running_totals
from tests.fakes.stripe import FakeStripe
from tests.stripe_facts_helpers import CUSTOMER, stripe_service, write_policy

POLICY = """
  - name: ceiling
    actions: [issue_refund]
    when: totals.connection.refunds_24h_cents > 100000000000 || totals.customer.refunds_24h_count > 100000
    decision: reject
    note: Over the ceiling.
"""
START = datetime(2026, 3, 2, 9, 41, 30, tzinfo=UTC)
EVERY = range(0, 30 * 60, 170)  # minutes: a request every 2 h 50 min for 30 hours
OLD_ROWS = 2 * prune.BATCH + 345  # more than two batches


async def _refund(service: Any, amount: int) -> dict[str, Any]:
    charge = service.fake.add_charge(amount + 1000, "usd", customer=CUSTOMER)
    return await service.accepted("issue_refund", {"charge_id": charge["id"], "amount_cents": amount,
                                                   "currency": "usd", "customer_id": CUSTOMER})


async def _starts(service: Any) -> list[datetime]:
    async with service.container.db.read() as session:
        return list((await session.scalars(select(UsageTotal.starts_at))).all())


async def _exact_at(service: Any, now: datetime) -> None:
    async with service.container.db.read() as session:
        connection = (await session.scalars(select(Connection))).one()
        for details in ({"currency": "usd", "customer_id": CUSTOMER}, {}, {"currency": "eur"}):
            running = await running_totals(session, connection, "issue_refund", details, now)
            assert running == await compute_totals(session, connection, "issue_refund", details, now), (now, details)


async def test_counters_older_than_the_window_are_pruned_and_the_totals_stay_exact(make_settings, clock, tmp_path):
    clock.now = START
    with FakeStripe() as fake:
        async with stripe_service(make_settings, clock, fake, policy_file=write_policy(tmp_path, POLICY)) as service:
            db = service.container.db
            await _refund(service, 1500)  # will be older than the window, still pending
            clock.advance(hours=3)
            await _refund(service, 2500)  # will still be inside it
            # Rows of days long gone, as an older version left them: more than one batch of them.
            old = [{"scope": "connection", "subject": f"conn_old{n % 7}", "action": "issue_refund",
                    "currency": "usd", "span": 60, "starts_at": START - timedelta(days=3, minutes=n),
                    "count": 1, "amount": 100} for n in range(OLD_ROWS)]
            await db.write(lambda session: session.execute(insert(UsageTotal), old))

            clock.now = START + timedelta(hours=26, minutes=5)
            await _refund(service, 3500)  # its commit enqueues this hour's prune job
            await service.container.worker.drain()  # the job, and the first request's expiry

            cutoff = prune.cutoff(clock.now)
            starts = await _starts(service)
            assert starts and min(starts) >= cutoff, sorted(starts)[:3]
            assert all(s >= cutoff for s in starts)
            async with db.read() as session:
                jobs = (await session.execute(select(Job.status, func.count()).where(Job.kind == prune.KIND)
                                              .group_by(Job.status))).all()
            # One an hour that wrote, each due an hour after: this hour's is still to come.
            assert sorted((str(status), count) for status, count in jobs) == [("done", 2), ("queued", 1)]
            # What is left counts exactly the requests inside the window, now and as time goes on.
            for ahead in (timedelta(0), timedelta(minutes=57, seconds=13), timedelta(hours=23, minutes=59)):
                await _exact_at(service, clock.now + ahead)
            async with db.read() as session:
                connection = (await session.scalars(select(Connection))).one()
                totals = await running_totals(session, connection, "issue_refund", {"currency": "usd"}, clock.now)
            assert totals.connection.refunds_24h_count == 2 and totals.connection.refunds_24h_cents == 6000


async def test_the_prune_job_runs_once_an_hour_and_deletes_nothing_a_window_reads(make_settings, clock, tmp_path):
    clock.now = START
    with FakeStripe() as fake:
        async with stripe_service(make_settings, clock, fake, policy_file=write_policy(tmp_path, POLICY)) as service:
            for minutes in EVERY:
                clock.now = START + timedelta(minutes=minutes)
                await _refund(service, 1000 + minutes)
                await _refund(service, 7)  # a second in the same hour: no second job
                await service.container.worker.drain()
                await _exact_at(service, clock.now)
                assert min(await _starts(service)) >= prune.cutoff(clock.now)
            async with service.container.db.read() as session:
                keys = (await session.scalars(select(Job.key).where(Job.kind == prune.KIND))).all()
            assert len(keys) == len(set(keys)) == len(EVERY)
