"""Callbacks end to end when delivery goes wrong: retries, redelivery, and the SSRF guard at intake and at
every attempt, against a real receiver on 127.0.0.1.
"""

import asyncio
import itertools
import socket
from datetime import timedelta

import pytest

from api.callbacks import MAX_ATTEMPTS, backoff_schedule
from api.callbacks import service as callbacks
from api.errors import Conflict, NotFound
from tests.callback_flow_helpers import (  # noqa: F401 -- the *_fixture names are used by fixture name
    OPS,
    attempts,
    callback_jobs,
    create,
    deliveries,
    hook_url_fixture,
    new_connection,
    receiver_fixture,
    run_retries,
    service,
    verified,
)
from tests.conftest import REFUND
from tests.test_cli import cheqpoint

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
    container.callback_resolver = resolver  # only delivery asks it; intake resolved localhost itself
    await container.decisions.decide(approval_id, OPS, "approve")
    await run_retries(container, clock)

    (delivery,) = await deliveries(container)
    assert delivery.status == "delivered"
    first, second = await attempts(container, delivery.id)
    assert "could not be resolved" in first.error and second.status_code == 200
    assert receiver.events[0].headers["host"] == f"localhost:{port}"  # the name travels, the address was pinned
