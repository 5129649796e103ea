"""Callbacks end to end: decisions become signed deliveries to a real receiver on 127.0.0.1.

The worker is stopped in these tests; `container.worker.drain()` runs what is due, and the injected
clock is moved to each scheduled retry. The receiver checks every delivery with `standardwebhooks`.
"""

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from api.approvals.actors import Actor
from api.approvals.models import Approval
from api.callbacks import MAX_ATTEMPTS, backoff_schedule
from api.callbacks import service as callbacks
from api.callbacks.events import JOB_KIND
from api.callbacks.models import CallbackAttempt, CallbackDelivery
from api.errors import Conflict, NotFound
from api.main import build_container, create_app, running
from api.outbox.models import Job
from tests.conftest import REFUND, TEST_APPROVERS
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.fakes.stripe import FakeStripe
from tests.groups import StaticGroups
from tests.test_cli import cheqpoint

OPS = Actor("operator", "UOPS", "ops")
BOB = Actor("operator", "UBOB", "bob")
POLICIES = Path(__file__).parent / "policies"


# ---- helpers ---------------------------------------------------------------------------------------

@pytest.fixture
def receiver(connection) -> CallbackReceiver:
    return CallbackReceiver(connection["secret"])


@pytest.fixture
def hook_url(receiver) -> str:
    with serve(receiver.app) as base_url:
        yield f"{base_url}/hooks/cheqpoint"


async def create(client, auth, hook_url, *, expect=(200, 202), **extra) -> dict:
    # execute: false unless a test says otherwise, so a decision is the only event that calls back.
    body = {**REFUND, "callbackUrl": hook_url, "execute": False, **extra}
    response = await client.post("/v1/approvals", json=body, headers=auth)
    assert response.status_code in expect, response.text
    return response.json()


async def deliveries(container, approval_id: str | None = None) -> list[CallbackDelivery]:
    query = select(CallbackDelivery).order_by(CallbackDelivery.created_at)
    if approval_id:
        query = query.where(CallbackDelivery.approval_id == approval_id)
    async with container.db.read() as session:
        return list((await session.scalars(query)).all())


async def attempts(container, delivery_id: str) -> list[CallbackAttempt]:
    async with container.db.read() as session:
        query = select(CallbackAttempt).where(CallbackAttempt.delivery_id == delivery_id).order_by(CallbackAttempt.id)
        return list((await session.scalars(query)).all())


async def callback_jobs(container) -> list[Job]:
    async with container.db.read() as session:
        return list((await session.scalars(select(Job).where(Job.kind == JOB_KIND).order_by(Job.id))).all())


async def run_retries(container, clock, *, rounds: int = 40) -> None:
    """Run what is due; while a callback job waits for a later attempt, move the clock to it."""
    for _ in range(rounds):
        await container.worker.drain()
        waiting = [job for job in await callback_jobs(container) if job.status == "queued"]
        if not waiting:
            return
        clock.now = max(clock.now, min(job.run_at for job in waiting))
    raise AssertionError("callback jobs still queued")


def verified(event, secret: str) -> dict:
    """Verify independently of the receiver, as an agent's endpoint would."""
    return Webhook(secret).verify(event.body, {k: v for k, v in event.headers.items() if k.startswith("webhook-")})


@contextlib.asynccontextmanager
async def service(make_settings, clock, **values) -> AsyncIterator[tuple]:
    """The app with other settings than the fixture's (a policy file, Stripe, SSRF checks on)."""
    container = build_container(make_settings(**values), clock=clock)
    container.authority.groups = StaticGroups({"S0FINANCE": TEST_APPROVERS})  # the policy's approver group
    async with running(container, worker=False):
        transport = httpx.ASGITransport(app=create_app(container.settings, container=container))
        async with httpx.AsyncClient(transport=transport, base_url="http://cheqpoint.test") as client:
            yield container, client


async def new_connection(container) -> dict[str, str]:
    from api.connections import service as connections

    created = await container.db.write(lambda session: connections.create(session, "agent"))
    return {"key": created.key, "secret": created.connection.webhook_secret,
            "auth": {"Authorization": f"Bearer {created.key}"}}


# ---- one callback per final event --------------------------------------------------------------------

async def test_an_edited_approval_calls_back_once_signed(client, auth, container, clock, connection, receiver,
                                                         hook_url):
    created = await create(client, auth, hook_url)
    approval_id = created["approvalId"]
    await container.worker.drain()
    assert await deliveries(container) == []  # pending: nothing to tell yet

    await container.decisions.decide(approval_id, OPS, "approve", note="Half, per policy",
                                     edits={"amount_cents": 17450})
    await container.worker.drain()
    await container.worker.drain()  # nothing more is sent once delivered

    assert len(receiver.attempts) == 1 and receiver.rejected == []
    (event,) = receiver.events
    payload = verified(event, connection["secret"])
    assert payload["type"] == "approval.approved"
    assert datetime.fromisoformat(payload["timestamp"]) == clock()  # when it was decided
    data = payload["data"]
    assert data == (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert data["status"] == "approved" and data["decisionNote"] == "Half, per policy"
    assert data["modifiedDetails"] == {**REFUND["details"], "amount_cents": 17450}
    assert data["changes"] == {"amount_cents": {"from": 34900, "to": 17450}}
    assert data["decidedBy"] == {"type": "operator", "id": "UOPS", "name": "ops"}
    assert "x-cheqpoint-signature" not in event.headers  # that one is for the compatible API only

    (delivery,) = await deliveries(container)
    assert event.webhook_id == delivery.id and delivery.id.startswith("msg_")
    assert event.body == delivery.body.encode()  # exactly the stored bytes were signed and sent
    assert (delivery.event_type, delivery.status, delivery.attempts) == ("approval.approved", "delivered", 1)
    assert delivery.delivered_at is not None and delivery.last_error is None
    (attempt,) = await attempts(container, delivery.id)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 200, None)
    assert [job.status for job in await callback_jobs(container)] == ["done"]


async def _reject(client, auth, container, clock, approval_id):
    await container.decisions.decide(approval_id, OPS, "reject", note="Not a duplicate")


async def _cancel(client, auth, container, clock, approval_id):
    response = await client.post(f"/v1/approvals/{approval_id}/cancel", headers=auth)
    assert response.status_code == 200, response.text


async def _expire(client, auth, container, clock, approval_id):
    clock.advance(hours=25)


@pytest.mark.parametrize(("end", "event", "decider"), [
    (_reject, "approval.rejected", "operator"),
    (_cancel, "approval.cancelled", None),
    (_expire, "approval.expired", "system"),
])
async def test_every_final_decision_calls_back(client, auth, container, clock, connection, receiver, hook_url,
                                               end, event, decider):
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    await end(client, auth, container, clock, approval_id)
    await container.worker.drain()

    (received,) = receiver.events
    payload = verified(received, connection["secret"])
    assert payload["type"] == event
    assert payload["data"]["approvalId"] == approval_id
    assert payload["data"]["status"] == event.removeprefix("approval.")
    if decider:
        assert payload["data"]["decidedBy"]["type"] == decider
    assert [d.event_type for d in await deliveries(container)] == [event]


async def test_no_url_no_callback_and_votes_are_not_final(make_settings, clock, receiver, hook_url):
    async with service(make_settings, clock, policy_file=POLICIES / "contract_example.yaml") as (container, client):
        conn = await new_connection(container)
        receiver.secret = conn["secret"]
        silent = await create(client, conn["auth"], None)
        await container.decisions.decide(silent["approvalId"], OPS, "reject", note="no")
        # "large refunds" needs two approvals: the first is a vote, not a decision.
        big = await create(client, conn["auth"], hook_url, details={**REFUND["details"], "amount_cents": 200_000})
        first = await container.decisions.decide(big["approvalId"], OPS, "approve")
        assert first.outcome == "vote"
        await container.worker.drain()
        assert await deliveries(container) == [] and receiver.attempts == []

        await container.decisions.decide(big["approvalId"], BOB, "approve")
        await container.worker.drain()
        (event,) = receiver.events
        data = verified(event, conn["secret"])["data"]
        assert data["status"] == "approved" and len(data["approvals"]) == 2


async def test_rules_decisions_call_back(make_settings, clock, receiver, hook_url):
    async with service(make_settings, clock, policy_file=POLICIES / "contract_example.yaml") as (container, client):
        conn = await new_connection(container)
        receiver.secret = conn["secret"]
        small = await create(client, conn["auth"], hook_url, expect=(200,),
                             details={**REFUND["details"], "amount_cents": 4000})
        payout = await create(client, conn["auth"], hook_url, expect=(200,), action="create_payout",
                              summary="Payout", details={"amount_cents": 6_000_000, "currency": "usd"})
        await container.worker.drain()

        payloads = [verified(e, conn["secret"]) for e in receiver.events]
        by_id = {p["data"]["approvalId"]: p for p in payloads}
        assert len(receiver.events) == 2
        assert by_id[small["approvalId"]]["type"] == "approval.approved"
        assert by_id[small["approvalId"]]["data"]["decidedBy"]["type"] == "rule"
        assert by_id[small["approvalId"]]["data"]["rule"] == "small duplicate refunds"
        assert by_id[payout["approvalId"]]["type"] == "approval.rejected"
        assert by_id[payout["approvalId"]]["data"]["decisionNote"] == "Payouts above $50,000 are made by hand."


async def test_the_end_of_an_execution_calls_back_too(make_settings, clock, receiver, hook_url):
    with FakeStripe() as stripe:
        charge = stripe.add_charge(amount=34900)
        async with service(make_settings, clock, stripe_secret_key="sk_test_123",
                           stripe_api_base=stripe.url) as (container, client):
            conn = await new_connection(container)
            receiver.secret = conn["secret"]
            details = {**REFUND["details"], "charge_id": charge["id"]}
            approval_id = (await create(client, conn["auth"], hook_url, execute=True, details=details))["approvalId"]
            await container.decisions.decide(approval_id, OPS, "approve", edits={"amount_cents": 17450})
            await container.worker.drain()

    payloads = [verified(e, conn["secret"]) for e in receiver.events]
    assert [p["type"] for p in payloads] == ["approval.approved", "approval.executed"]
    assert payloads[0]["data"]["execution"]["status"] == "queued"
    execution = payloads[1]["data"]["execution"]
    assert execution["status"] == "succeeded" and execution["stripeObjectId"].startswith("re_")
    assert execution["result"]["amount"] == 17450
    assert len({e.webhook_id for e in receiver.events}) == 2  # one id per event


async def test_a_failed_execution_calls_back(client, auth, container, connection, receiver, hook_url):
    # The fixture's settings have no Stripe key: the execution fails, clearly, and the agent is told.
    approval_id = (await create(client, auth, hook_url, execute=True))["approvalId"]
    await container.decisions.decide(approval_id, OPS, "approve")
    await container.worker.drain()

    payloads = [verified(e, connection["secret"]) for e in receiver.events]
    assert [p["type"] for p in payloads] == ["approval.approved", "approval.execution_failed"]
    assert payloads[1]["data"]["execution"]["status"] == "failed"
    assert payloads[1]["data"]["execution"]["error"]["code"] == "stripe_not_configured"


async def test_compatible_requests_get_the_compatible_body_and_signature(client, auth, container, connection,
                                                                         receiver, hook_url):
    pytest.importorskip("api.compat.schemas")
    receiver.check_compat_signature = True
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    # Made through the native API for this test's sake; the compatible routes store surface="compat".
    await container.db.write(lambda s: s.execute(update(Approval).where(Approval.id == approval_id)
                                                 .values(surface="compat")))
    await container.decisions.decide(approval_id, OPS, "reject", note="Wrong customer")
    await container.worker.drain()

    assert receiver.rejected == []
    (event,) = receiver.events  # the receiver checked x-cheqpoint-signature as well
    payload = verified(event, connection["secret"])
    assert payload["type"] == "approval.rejected"
    assert payload["id"] == payload["approvalId"] == approval_id
    assert payload["status"] == "REJECTED" and payload["retryable"] is False
    assert payload["decisionNote"] == payload["responseNotes"] == "Wrong customer"
    assert payload["execution"]["status"] == "not_requested"
    (delivery,) = await deliveries(container)
    assert delivery.compat_signature is True


# ---- retries ---------------------------------------------------------------------------------------

async def test_a_receiver_down_for_a_while_gets_the_callback_once(client, auth, container, clock, connection,
                                                                  receiver, hook_url):
    receiver.fail_first(3)
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    await container.decisions.decide(approval_id, OPS, "approve")
    await container.worker.drain()

    (delivery,) = await deliveries(container)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error.startswith("HTTP 503")
    (job,) = await callback_jobs(container)
    assert job.status == "queued" and job.run_at >= clock() + timedelta(seconds=backoff_schedule()[0])
    await container.worker.drain()
    assert len(receiver.attempts) == 1  # the retry waits for its time

    await run_retries(container, clock)

    assert [a.outcome for a in receiver.attempts] == ["failed_on_purpose"] * 3 + ["accepted"]
    assert {a.webhook_id for a in receiver.attempts} == {delivery.id}
    assert all(a.verified for a in receiver.attempts)  # each attempt freshly and validly signed
    assert receiver.ids_seen == [delivery.id]
    recorded = await attempts(container, delivery.id)
    assert [a.attempt for a in recorded] == [1, 2, 3, 4]
    assert [a.status_code for a in recorded] == [503, 503, 503, 200]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(recorded)]
    assert all(gap >= step for gap, step in zip(gaps, backoff_schedule(), strict=False))
    (delivery,) = await deliveries(container)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 4, None)


async def test_redirects_are_not_followed(client, auth, container, clock, connection, receiver, hook_url):
    elsewhere = hook_url.rsplit("/", 2)[0] + "/elsewhere"
    receiver.redirect_to(elsewhere)
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    await container.decisions.decide(approval_id, OPS, "approve")
    await container.worker.drain()

    (delivery,) = await deliveries(container)
    assert delivery.status == "pending" and "redirects are not followed" in delivery.last_error
    assert [a.path for a in receiver.attempts] == ["/hooks/cheqpoint"]  # nothing went to the Location

    receiver.redirect_to(None)
    await run_retries(container, clock)
    assert receiver.ids_seen == [delivery.id]
    assert [a.status_code for a in await attempts(container, delivery.id)] == [302, 200]
    assert {a.path for a in receiver.attempts} == {"/hooks/cheqpoint"}


async def test_after_the_last_attempt_it_fails_and_an_operator_redelivers(
        client, auth, container, clock, connection, receiver, hook_url, database_url):
    receiver.down = True
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    await container.decisions.decide(approval_id, OPS, "reject", note="No")
    await run_retries(container, clock)

    (delivery,) = await deliveries(container)
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.last_error.startswith("HTTP 503")
    (job,) = await callback_jobs(container)
    assert job.status == "parked" and job.attempts == MAX_ATTEMPTS
    recorded = await attempts(container, delivery.id)
    assert len(recorded) == len(receiver.attempts) == MAX_ATTEMPTS
    assert recorded[-1].at - recorded[0].at >= timedelta(hours=24)  # CONTRACT §4: at least 24 hours
    assert {a.webhook_id for a in receiver.attempts} == {delivery.id}

    listing = await asyncio.to_thread(cheqpoint, database_url, "callbacks", "list", "--failed")
    assert listing.returncode == 0, listing.stderr
    (line,) = listing.stdout.splitlines()
    assert delivery.id in line and approval_id in line and "approval.rejected" in line
    assert "failed" in line and f"{MAX_ATTEMPTS} attempts" in line and "HTTP 503" in line

    receiver.down = False
    again = await asyncio.to_thread(cheqpoint, database_url, "callbacks", "redeliver", delivery.id)
    assert again.returncode == 0, again.stderr
    await container.worker.drain()

    assert receiver.ids_seen == [delivery.id]  # the same webhook-id, so the agent can de-duplicate
    assert verified(receiver.events[0], connection["secret"])["type"] == "approval.rejected"
    (delivery,) = await deliveries(container)
    assert (delivery.status, delivery.attempts) == ("delivered", MAX_ATTEMPTS + 1)

    assert await callbacks.list_deliveries(container.db, failed_only=True) == []
    # Each command is a process that starts slowly; these two do not depend on each other.
    shown, missing = await asyncio.gather(
        asyncio.to_thread(cheqpoint, database_url, "callbacks", "show", delivery.id),
        asyncio.to_thread(cheqpoint, database_url, "callbacks", "redeliver", "msg_missing"))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert sum("HTTP 503" in line for line in lines) == MAX_ATTEMPTS
    assert lines[-1].startswith(f"  #{MAX_ATTEMPTS + 1}") and " 200 " in lines[-1] and lines[-1].endswith("ok")
    assert missing.returncode == 3 and "msg_missing" in missing.stderr


async def test_redelivery_needs_a_finished_delivery(client, auth, container, receiver, hook_url):
    receiver.down = True
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    await container.decisions.decide(approval_id, OPS, "approve")
    await container.worker.drain()
    (delivery,) = await deliveries(container)
    with pytest.raises(Conflict):
        await callbacks.redeliver(container.db, delivery.id)  # its job is still retrying
    with pytest.raises(NotFound):
        await callbacks.redeliver(container.db, "msg_missing")
    assert len(await callback_jobs(container)) == 1


# ---- the SSRF guard --------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]/hook",
    "http://10.0.0.7/hook", "http://2130706433/hook", "file:///etc/passwd",
])
async def test_unsafe_callback_urls_are_refused_at_intake(make_settings, clock, url):
    async with service(make_settings, clock, callback_allow_private=False) as (container, client):
        conn = await new_connection(container)
        response = await client.post("/v1/approvals", json={**REFUND, "callbackUrl": url}, headers=conn["auth"])
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["callbackUrl"]
        assert (await client.get("/v1/approvals", headers=conn["auth"])).json()["data"] == []


async def test_the_url_is_checked_again_at_every_attempt(client, auth, container, clock, receiver, hook_url,
                                                         monkeypatch):
    receiver.fail_first(1)
    approval_id = (await create(client, auth, hook_url))["approvalId"]
    await container.decisions.decide(approval_id, OPS, "approve")
    await container.worker.drain()
    assert len(receiver.attempts) == 1

    # Private addresses were allowed when it was accepted (development); the deployment no longer allows them.
    monkeypatch.setattr(container.settings, "callback_allow_private", False)
    await run_retries(container, clock)

    assert len(receiver.attempts) == 1  # never called again
    (delivery,) = await deliveries(container)
    assert delivery.status == "failed" and "loopback" in delivery.last_error
    second = (await attempts(container, delivery.id))[-1]
    assert (second.attempt, second.status_code) == (2, None) and "loopback" in second.error
    (job,) = await callback_jobs(container)
    assert job.status == "parked" and job.attempts == 2  # parked at once, not retried for a day


async def test_a_name_that_does_not_resolve_for_a_while_is_retried(client, auth, container, clock, receiver,
                                                                   hook_url):
    port = int(hook_url.split(":")[2].split("/")[0])
    answers = iter([socket.gaierror("temporary failure in name resolution"), ["127.0.0.1"]])

    async def resolver(host: str, port: int) -> list[str]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    approval_id = (await create(client, auth, f"http://localhost:{port}/hooks/cheqpoint"))["approvalId"]
    container.extras["callback_resolver"] = resolver  # only delivery asks it; intake resolved localhost itself
    await container.decisions.decide(approval_id, OPS, "approve")
    await run_retries(container, clock)

    (delivery,) = await deliveries(container)
    assert delivery.status == "delivered"
    first, second = await attempts(container, delivery.id)
    assert "could not be resolved" in first.error and second.status_code == 200
    assert receiver.events[0].headers["host"] == f"localhost:{port}"  # the name travels, the address was pinned

