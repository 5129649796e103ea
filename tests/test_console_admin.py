"""Connections and health in the console: approvers manage them, viewers are refused, keys shown once."""

from collections.abc import Callable
from typing import Any

from api.connections import service
from tests.conftest import REFUND
from tests.console_helpers import VIEWER, ConsoleHarness, console_harness, hidden_fields
from tests.slack_helpers import APPROVER


async def csrf(h: ConsoleHarness, path: str = "/console") -> str:
    return hidden_fields((await h.http.get(path)).text)["csrf"]


async def test_create_shows_the_key_once_and_revoke_stops_it(make_settings: Callable[..., Any],
                                                              clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        await h.sign_in(APPROVER)
        token = await csrf(h, "/console/connections")
        created = await h.http.post("/console/connections", data={"csrf": token, "name": "billing-agent"})
        assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
        key = created.text.split("<dt>Connection Key</dt><dd><code>")[1].split("</code>")[0]
        con_id = created.text.split("<dt>Id</dt><dd><code>")[1].split("</code>")[0]
        listing = await h.http.get("/console/connections")
        assert "billing-agent" in listing.text and key not in listing.text  # never shown again

        agent = {"Authorization": f"Bearer {key}"}
        made = await h.http.post("/v1/approvals", json={**REFUND, "execute": False}, headers=agent)
        assert made.status_code == 202
        revoked = await h.http.post(f"/console/connections/{con_id}/revoke", data={"csrf": token})
        assert revoked.status_code == 303
        assert (await h.http.get("/v1/approvals", headers=agent)).status_code == 401
        cancelled = await h.container.approvals.get(None, made.json()["approvalId"])
        assert cancelled.status == "cancelled"  # revoking cancels the Connection's pending requests
        unknown = await h.http.post("/console/connections/con_nothing/revoke", data={"csrf": token})
        assert unknown.status_code == 404
        empty = await h.http.post("/console/connections", data={"csrf": token, "name": "  "})
        assert empty.status_code == 422


async def test_viewers_may_not_manage_connections_or_jobs(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        await h.sign_in(VIEWER)
        token = await csrf(h)
        assert (await h.http.get("/console/connections")).status_code == 403
        assert (await h.http.get("/console/health")).status_code == 403
        made = await h.http.post("/console/connections", data={"csrf": token, "name": "sneaky"})
        assert made.status_code == 403 and "sneaky" not in made.text
        async with h.container.db.read() as session:
            assert [c.name for c in await service.list_all(session)] == ["support-agent"]


async def test_health_lists_parked_jobs_and_requeue_runs_them_again(make_settings: Callable[..., Any],
                                                                   clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        h.fake.fail_next("chat.postMessage", "channel_not_found")  # Slack refuses for good: the job parks
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.settle()
        await h.sign_in(APPROVER)
        health = await h.http.get("/console/health")
        assert health.status_code == 200 and "slack.post" in health.text and apr in health.text
        job_id = health.text.split('action="/console/jobs/')[1].split("/requeue")[0]
        token = hidden_fields(health.text)["csrf"]
        requeued = await h.http.post(f"/console/jobs/{job_id}/requeue", data={"csrf": token})
        assert requeued.status_code == 303
        await h.settle()
        assert h.fake.messages_in(h.fake.REVIEW_CHANNEL), "the review message was posted on the second run"
        after = await h.http.get("/console/health")
        assert "No parked jobs." in after.text
        twice = await h.http.post(f"/console/jobs/{job_id}/requeue", data={"csrf": token})
        assert twice.status_code == 409
