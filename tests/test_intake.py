"""The native intake API (CONTRACT §3), over HTTP through the real app."""

import copy

from sqlalchemy import func, select

from api.approvals.models import Approval
from tests.conftest import REFUND


async def count_approvals(container) -> int:
    async with container.db.read() as session:
        return await session.scalar(select(func.count()).select_from(Approval))


async def test_async_request_is_pending_and_readable(client, auth):
    created = await client.post("/v1/approvals", json=REFUND, headers=auth)
    assert created.status_code == 202
    body = created.json()
    assert body["approvalId"].startswith("apr_")
    assert body["status"] == "pending"
    assert body["details"]["amount_cents"] == 34900
    assert body["modifiedDetails"] is None and body["changes"] == {}
    assert body["requiredApprovals"] == 1
    assert body["execution"]["status"] == "queued" or body["execution"]["status"] == "not_requested"
    fetched = await client.get(f"/v1/approvals/{body['approvalId']}", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json()["approvalId"] == body["approvalId"]


async def test_read_only_action_passes_without_review(client, auth):
    # No Stripe key configured: the lookup passes policy at once and its failure is reported inline.
    response = await client.post("/v1/approvals", headers=auth, json={
        "action": "retrieve_balance", "summary": "Check balance", "details": {}})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "approved"
    assert body["decidedBy"]["type"] == "rule"
    assert body["execution"]["status"] == "failed"
    assert "STRIPE_SECRET_KEY" in body["execution"]["error"]["message"]


async def test_idempotency_key_returns_the_original_and_conflicts_on_other_body(client, auth, container):
    headers = {**auth, "Idempotency-Key": "refund-42"}
    first = await client.post("/v1/approvals", json=REFUND, headers=headers)
    again = await client.post("/v1/approvals", json=REFUND, headers=headers)
    assert again.json()["approvalId"] == first.json()["approvalId"]
    other = copy.deepcopy(REFUND)
    other["details"]["amount_cents"] = 100
    conflict = await client.post("/v1/approvals", json=other, headers=headers)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in conflict.json()["detail"]
    assert await count_approvals(container) == 1


async def test_unknown_action_only_without_execute(client, auth):
    custom = {"action": "send_gift_card", "summary": "Send a $20 gift card", "details": {"to": "cus_1"}}
    refused = await client.post("/v1/approvals", json={**custom, "execute": True}, headers=auth)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["action"]
    accepted = await client.post("/v1/approvals", json={**custom, "execute": False}, headers=auth)
    assert accepted.status_code == 202
    assert accepted.json()["execution"]["status"] == "not_requested"
    # Absent `execute` means false for actions outside the catalogue.
    assert (await client.post("/v1/approvals", json=custom, headers=auth)).status_code == 202


async def test_bad_inputs_get_specific_errors_and_store_nothing(client, auth, container):
    cases = [
        (b"{not json", 400, None),
        (b'["a list"]', 422, None),
        ({**REFUND, "colour": "red"}, 422, ["colour"]),
        ({**REFUND, "details": {**REFUND["details"], "amount_cents": -5}}, 422, ["details", "amount_cents"]),
        ({**REFUND, "details": {**REFUND["details"], "amount_cents": 349.5}}, 422, ["details", "amount_cents"]),
        ({**REFUND, "details": {**REFUND["details"], "amount_cents": "34900"}}, 422, ["details", "amount_cents"]),
        ({**REFUND, "details": {**REFUND["details"], "bogus": 1}}, 422, ["details", "bogus"]),
        ({**REFUND, "summary": 12}, 422, ["summary"]),
        ({**REFUND, "timeoutMs": -1}, 422, ["timeoutMs"]),
        ({**REFUND, "riskLevel": "extreme"}, 422, ["riskLevel"]),
        ({**REFUND, "callbackUrl": "ftp://example.com/x"}, 422, ["callbackUrl"]),
    ]
    for body, status, loc in cases:
        if isinstance(body, bytes):
            response = await client.post("/v1/approvals", content=body,
                                         headers={**auth, "content-type": "application/json"})
        else:
            response = await client.post("/v1/approvals", json=body, headers=auth)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status and problem["detail"]
        if loc is not None:
            assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), problem
    assert await count_approvals(container) == 0


async def test_oversized_body_is_413(client, auth, container):
    big = {**REFUND, "justification": "x" * (300 * 1024)}
    response = await client.post("/v1/approvals", json=big, headers=auth)
    assert response.status_code == 413
    assert response.json()["title"] == "Payload too large"
    assert await count_approvals(container) == 0


async def test_keys_and_isolation(client, auth, container):
    from api.connections import service

    assert (await client.post("/v1/approvals", json=REFUND)).status_code == 401
    assert (await client.post("/v1/approvals", json=REFUND,
                              headers={"Authorization": "Bearer cq_wrong"})).status_code == 401
    mine = (await client.post("/v1/approvals", json=REFUND, headers=auth)).json()["approvalId"]

    other = await container.db.write(lambda s: service.create(s, "other-agent"))
    theirs = {"Authorization": f"Bearer {other.key}"}
    assert (await client.get(f"/v1/approvals/{mine}", headers=theirs)).status_code == 404
    assert (await client.post(f"/v1/approvals/{mine}/cancel", headers=theirs)).status_code == 404
    assert (await client.get("/v1/approvals", headers=theirs)).json()["data"] == []

    await container.db.write(lambda s: service.revoke(s, other.connection.id))
    container.key_cache.clear()  # as after CACHE_SECONDS
    revoked = await client.get("/v1/approvals", headers=theirs)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


async def test_list_is_newest_first_with_cursor(client, auth):
    ids = [(await client.post("/v1/approvals", json=REFUND, headers=auth)).json()["approvalId"] for _ in range(5)]
    page1 = (await client.get("/v1/approvals?limit=2", headers=auth)).json()
    assert [a["approvalId"] for a in page1["data"]] == ids[::-1][:2]
    page2 = (await client.get(f"/v1/approvals?limit=2&cursor={page1['nextCursor']}", headers=auth)).json()
    page3 = (await client.get(f"/v1/approvals?limit=2&cursor={page2['nextCursor']}", headers=auth)).json()
    assert [a["approvalId"] for a in page2["data"] + page3["data"]] == ids[::-1][2:]
    assert page3["nextCursor"] is None
    assert (await client.get("/v1/approvals?cursor=garbage", headers=auth)).status_code == 422
    assert (await client.get("/v1/approvals?status=bogus", headers=auth)).status_code == 422


async def test_cancel_pending_only(client, auth):
    approval_id = (await client.post("/v1/approvals", json=REFUND, headers=auth)).json()["approvalId"]
    cancelled = await client.post(f"/v1/approvals/{approval_id}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/v1/approvals/{approval_id}/cancel", headers=auth)
    assert again.status_code == 409


async def test_health_and_openapi(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok"}
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/approvals" in spec["paths"]
