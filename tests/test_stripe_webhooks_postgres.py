"""Stripe delivers an event at least once, sometimes twice at the same moment, to whichever replica
answers: on PostgreSQL, concurrent deliveries of one event to two instances record it once."""

import asyncio

import httpx
import pytest

from api.main import build_container, create_app, running
from api.stripe_webhooks.models import StripeEvent
from tests.fakes.stripe_events import refund_failed, signed
from tests.stripe_webhook_harness import WEBHOOK_SECRET, harness

pytestmark = pytest.mark.postgres


async def test_concurrent_deliveries_of_one_event_to_two_instances_record_it_once(make_settings, clock):
    async with harness(make_settings, clock) as h:
        approval = await h.refund()
        body, headers = signed(refund_failed(h.stripe.refunds[0]), WEBHOOK_SECRET)
        other = build_container(h.container.settings, clock=clock)
        async with running(other, worker=False):
            transport = httpx.ASGITransport(app=create_app(other.settings, container=other))
            async with httpx.AsyncClient(transport=transport, base_url="http://replica.test") as replica:
                responses = await asyncio.gather(*(
                    client.post("/stripe/webhook", content=body, headers=headers)
                    for client in [h.http, replica] * 4))
        await h.container.worker.drain()

        assert [r.status_code for r in responses] == [200] * 8
        outcomes = sorted(r.json()["outcome"] for r in responses)
        assert outcomes == ["applied"] + ["duplicate"] * 7
        assert await h.count(StripeEvent) == 1
        assert len(await h.updates_audited(approval["approvalId"])) == 1
        assert await h.deliveries("approval.execution_updated") == 1
        assert len(h.callbacks("approval.execution_updated")) == 1
        assert (await h.approval(approval["approvalId"]))["execution"]["status"] == "failed"
