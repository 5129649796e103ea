"""Running velocity totals (issue 14) against the exact query they replace.

A random sequence of intakes (over HTTP), decisions (the decision use case every surface calls),
cancellations (HTTP), expiries and executions (the worker, against the fake Stripe over HTTP),
revocations, late verifications and time moving on. After every step the counters must give
exactly what `compute_totals` (the aggregate query over the approvals, kept for replay) gives, for
every Connection and customer, in each currency and none, at the current time and at times ahead
(so the 24-hour window's edge falls in every kind of bucket). Runs on SQLite and, with
CHEQPOINT_TEST_POSTGRES_URL, on PostgreSQL.
"""

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from api.approvals.actors import Actor
from api.approvals.models import Approval
from api.connections import service as connections
from api.connections.models import Connection
from api.policy.usage import compute_totals
from api.usage.read import running_totals
from tests.fakes.stripe import FakeStripe
from tests.stripe_facts_helpers import stripe_service, write_policy

OPS = Actor("operator", "U012ABCDEF", "ops")
CUSTOMERS = ("cus_QaAbCdEfGhIjK", "cus_ZzYyXxWwVvUu")
CURRENCIES = ("usd", "eur")
ACTIONS = ("issue_refund", "create_payout", "send_gift_card")  # the last is outside the catalogue
# The rules read totals, so intake decides under the locks; some requests are decided by a rule.
POLICY = """
  - name: ceiling
    actions: [issue_refund, create_payout]
    when: totals.connection.refunds_24h_cents > 100000000000 || totals.customer.refunds_24h_count > 100000
    decision: reject
    note: Over the ceiling.
  - name: tiny refunds
    actions: [issue_refund]
    when: has(details.amount_cents) && details.amount_cents <= 300
    decision: approve
  - name: huge refunds
    actions: [issue_refund]
    when: has(details.amount_cents) && details.amount_cents >= 90000
    decision: reject
    note: Too much.
"""


class Scenario:
    def __init__(self, service: Any, clock: Any, fake: FakeStripe, rng: random.Random) -> None:
        self.service, self.clock, self.fake, self.rng = service, clock, fake, rng
        self.container = service.container
        self.agents: dict[str, dict[str, str]] = {}  # connection id → auth, live ones
        self.all_connections: list[str] = []

    async def add_connection(self) -> None:
        created = await self.container.db.write(lambda s: connections.create(s, f"agent-{len(self.agents)}"))
        self.agents[created.connection.id] = {"Authorization": f"Bearer {created.key}"}
        self.all_connections.append(created.connection.id)

    async def pending(self) -> list[Approval]:
        async with self.container.db.read() as session:
            return list((await session.scalars(select(Approval).where(Approval.status == "pending")
                                               .order_by(Approval.id))).all())

    # ---- steps ---------------------------------------------------------------------------------

    async def intake(self, action: str | None = None, *, whole: bool | None = None,
                     unverified: bool | None = None) -> dict[str, Any]:
        rng = self.rng
        connection_id = rng.choice(sorted(self.agents))
        currency = rng.choice(CURRENCIES)
        action = action or rng.choice(("issue_refund", "issue_refund", "create_payout", "send_gift_card"))
        details: dict[str, Any]
        if action == "issue_refund":
            charge = self.fake.add_charge(rng.randrange(500, 120000), currency, customer=rng.choice(CUSTOMERS))
            details = {"charge_id": charge["id"], "reason": "duplicate"}
            if not (rng.random() < 0.3 if whole is None else whole):  # a whole refund: Stripe says how much
                details["amount_cents"] = rng.randrange(100, charge["amount"] + 1)
            if unverified is None and rng.random() < 0.5:  # otherwise Stripe's verification fills them in
                details.update(currency=currency, customer_id=charge["customer"])
            if rng.random() < 0.15 if unverified is None else unverified:
                self.fake.fail_next(1, 503, methods=("GET",))  # filled in later by the verify job
        elif action == "create_payout":
            details = {"amount_cents": rng.randrange(100, 50000), "currency": currency}
        else:
            details = {"amount_cents": rng.randrange(100, 50000), "currency": currency,
                       "customer_id": rng.choice(CUSTOMERS)}
        body = {"action": action, "summary": f"{action} by the agent", "details": details}
        if action == "send_gift_card":
            body["execute"] = False
        response = await self.service.http.post("/v1/approvals", json=body, headers=self.agents[connection_id])
        assert response.status_code in (200, 202, 422), response.text
        return response.json()

    async def decide(self, approval_id: str | None = None) -> None:
        pending = [a for a in await self.pending() if approval_id in (None, a.id)]
        if not pending:
            return
        approval = self.rng.choice(pending)
        roll = 1.0 if approval_id else self.rng.random()
        if roll < 0.3:
            await self.container.decisions.decide(approval.id, OPS, "reject", note="No.")
        elif roll < 0.5 and approval.action == "issue_refund" and approval.details.get("amount_cents", 0) > 200:
            lower = self.rng.randrange(100, approval.details["amount_cents"])
            await self.container.decisions.decide(approval.id, OPS, "approve", edits={"amount_cents": lower})
        else:
            await self.container.decisions.decide(approval.id, OPS, "approve")

    async def cancel(self) -> None:
        mine = [a for a in await self.pending() if a.connection_id in self.agents]
        if mine:
            approval = self.rng.choice(mine)
            response = await self.service.http.post(f"/v1/approvals/{approval.id}/cancel",
                                                    headers=self.agents[approval.connection_id])
            assert response.status_code == 200, response.text

    async def later(self, minutes: float | None = None) -> None:
        self.clock.advance(minutes=minutes or self.rng.choice((0.5, 1, 7, 59, 61, 180, 600, 1380)),
                           seconds=self.rng.randrange(60))
        await self.container.worker.drain()  # what has come due: expiries, retries of the verify job

    async def work(self) -> None:
        await self.container.worker.drain()  # executions against Stripe, verifications

    async def revoke(self) -> None:
        if len(self.agents) < 2:
            return
        victim = self.rng.choice(sorted(self.agents))
        await self.container.db.write(lambda s: connections.revoke(s, victim, effects=self.container.effects))
        del self.agents[victim]
        await self.add_connection()

    # ---- the check -------------------------------------------------------------------------------

    async def check(self, step: str) -> None:
        async with self.container.db.read() as session:
            stored = {c.id: c for c in (await session.scalars(select(Connection))).all()}
            for connection_id in self.all_connections:
                for ahead in (timedelta(0), timedelta(minutes=self.rng.randrange(1, 1500), seconds=37)):
                    now = self.clock.now + ahead
                    for action in ACTIONS:
                        currency = self.rng.choice((*CURRENCIES, None))
                        customer = self.rng.choice((*CUSTOMERS, None))
                        details = {k: v for k, v in (("currency", currency), ("customer_id", customer)) if v}
                        exact = await compute_totals(session, stored[connection_id], action, details, now)
                        running = await running_totals(session, stored[connection_id], action, details, now)
                        assert running == exact, (step, connection_id, action, details, ahead)


STEPS = ("intake", "intake", "intake", "intake", "decide", "decide", "cancel", "later", "work", "revoke")


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_running_totals_equal_the_exact_query_after_every_step(make_settings, clock, tmp_path, seed):
    rng = random.Random(seed)
    with FakeStripe() as fake:
        async with stripe_service(make_settings, clock, fake, policy_file=write_policy(tmp_path, POLICY)) as service:
            scenario = Scenario(service, clock, fake, rng)
            scenario.all_connections.append(await _first(service))
            scenario.agents[scenario.all_connections[0]] = service.auth
            await scenario.add_connection()
            seen: set[tuple[str, str]] = set()
            # Every kind of change at least once, then at random.
            whole = await scenario.intake("issue_refund", whole=True)
            unverified = await scenario.intake("issue_refund", unverified=True)
            prologue = [("whole refund", scenario.decide(whole["approvalId"])), ("execute", scenario.work()),
                        ("unverified", scenario.intake("issue_refund", unverified=True)),
                        ("verified later", scenario.later(2)), ("payout", scenario.intake("create_payout")),
                        ("expiry", scenario.later(1500)),
                        ("decide unverified", scenario.decide(unverified["approvalId"]))]
            steps = [*prologue, *((f"{n}: {name}", getattr(scenario, name)())
                                  for n, name in enumerate(rng.choice(STEPS) for _ in range(40)))]
            for step, run in steps:
                await run
                await scenario.check(step)
                async with service.container.db.read() as session:
                    seen |= set((await session.execute(select(Approval.status, Approval.execution_status))).all())
            # The sequence went through the changes the counters must follow.
            statuses = {status for status, _ in seen}
            assert {"pending", "approved", "rejected"} <= statuses, seen
            assert ("approved", "succeeded") in seen, seen


async def _first(service: Any) -> str:
    async with service.container.db.read() as session:
        return (await session.scalars(select(Connection.id))).one()


async def test_a_change_to_the_edge_minute_in_the_same_transaction_is_seen_by_the_next_read(
        make_settings, clock, tmp_path):
    """A SQLite group commit runs many requests in one transaction and keeps what it read of the
    totals; a request of the window's first minute decided in between must stop counting at once."""
    from datetime import UTC, datetime

    from api.approvals import state

    clock.now = datetime(2026, 3, 2, 9, 41, 30, tzinfo=UTC)
    with FakeStripe() as fake:
        async with stripe_service(make_settings, clock, fake, policy_file=write_policy(tmp_path, POLICY)) as service:
            charge = fake.add_charge(5000, "usd", customer=CUSTOMERS[0])
            created = await service.accepted("issue_refund", {"charge_id": charge["id"], "amount_cents": 4000})
            clock.advance(hours=24, seconds=-10)  # the window now starts 10 s before it, in the same minute
            container = service.container

            async def decide_between_reads(session: Any) -> list[Any]:
                connection = (await session.scalars(select(Connection))).one()
                details = {"currency": "usd", "customer_id": CUSTOMERS[0]}
                seen = [await running_totals(session, connection, "issue_refund", details, clock.now)]
                approval = await session.get(Approval, created["approvalId"])
                await state.finalize(session, container.effects, approval, "rejected", OPS, "no")
                seen.append(await running_totals(session, connection, "issue_refund", details, clock.now))
                seen.append(await compute_totals(session, connection, "issue_refund", details, clock.now))
                return seen

            before, after, exact = await container.db.write(decide_between_reads)
    assert before.customer.refunds_24h_count == 1 and before.connection.refunds_24h_cents == 4000
    assert after == exact and after.customer.refunds_24h_count == 0
