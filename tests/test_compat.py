"""The Cheqpoint-compatible API (CONTRACT §3b), driven by Cheqpoint's official `cheqpoint` client.

The client uses `requests`, so the app runs on a real port (`tests.live`).
"""

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cheqpoint import CheqpointClient, CheqpointError, RejectedError
from cheqpoint import TimeoutError as CheqpointTimeout

from api.approvals.actors import Actor
from tests.conftest import REFUND
from tests.live import Live, start_live

POLICIES = Path(__file__).parent / "policies"
DECIDE_ONLY_REFUND = {k: v for k, v in REFUND.items() if k != "justification"}


@pytest.fixture
def live(make_settings: Callable[..., Any]) -> Iterator[Live]:
    yield from start_live(make_settings())


@pytest.fixture
def sdk(live: Live) -> CheqpointClient:
    return CheqpointClient(api_key=live.key, base_url=live.url, timeout=10)


# ---- the official client, unchanged -----------------------------------------------------------------

def test_checkpoint_approved_with_risk_score_and_trace(live: Live, sdk: CheqpointClient) -> None:
    reviewer = live.decide_when_pending("approve", note="Fine by me")
    trace = {"steps": [{"type": "thought", "content": "duplicate charge"}], "model": "gpt-4o"}
    result = sdk.checkpoint(action="send_email", summary="Email the customer", details={"to": "a@b.co"},
                            risk_score=0.9, trace=trace, poll_interval=0.05)
    reviewer.join()
    assert result.status == "APPROVED"
    assert result.effective_details == {"to": "a@b.co"} and result.response_notes == "Fine by me"
    stored = live.approval(result.id)
    assert stored.surface == "compat" and stored.execute is False
    assert stored.risk_level == "high"
    assert stored.extra == {"riskScore": 0.9, "trace": trace}


def test_guard_runs_on_the_reviewers_edit(live: Live, sdk: CheqpointClient) -> None:
    reviewer = live.decide_when_pending("approve", note="Half only", edits={"amount_cents": 17450})
    ran: list[dict[str, Any]] = []
    outcome = sdk.guard("issue_refund", REFUND["details"], lambda ctx: ran.append(ctx.details) or "refunded",
                        summary=REFUND["summary"], poll_interval=0.05)
    reviewer.join()
    assert outcome == "refunded"
    assert ran[0]["amount_cents"] == 17450 and ran[0]["charge_id"] == REFUND["details"]["charge_id"]
    stored = live.approval(live.run(live.container.approvals.list(live.connection_id))[0][0].id)
    # Decide-only: the agent refunds itself, so the service must not execute it too.
    assert stored.execute is False and stored.execution_status == "not_requested"
    assert stored.changes == {"amount_cents": {"from": 34900, "to": 17450}}


def test_checkpoint_rejected_raises_with_the_note(live: Live, sdk: CheqpointClient) -> None:
    reviewer = live.decide_when_pending("reject", note="Not within the refund window")
    with pytest.raises(RejectedError) as caught:
        sdk.checkpoint(action="issue_refund", summary="Refund", details=REFUND["details"], poll_interval=0.05)
    reviewer.join()
    assert caught.value.response_notes == "Not within the refund window"
    status = sdk.get_request(caught.value.request_id)
    assert status.status == "REJECTED" and status.retryable is False and status.auto_decided is False
    assert status.decision_note == status.response_notes == "Not within the refund window"
    assert status.decided_at is not None


def test_checkpoint_times_out_while_pending(sdk: CheqpointClient) -> None:
    with pytest.raises(CheqpointTimeout):
        sdk.checkpoint(action="deploy_code", summary="Deploy", details={"sha": "abc"}, poll_interval=0.05,
                       timeout=0.3)


def test_create_request_and_get_request(live: Live, sdk: CheqpointClient) -> None:
    created = sdk.create_request(action="processRefund", summary="Refund order #44821",
                                 details={"customer_id": "cus_123", "amount": 2800}, risk_score=0.5,
                                 justification="Damaged in transit", webhook_url="http://127.0.0.1:9/hook")
    status = sdk.get_request(created["id"])
    assert status.status == "PENDING" and status.details == {"customer_id": "cus_123", "amount": 2800}
    assert status.modified_details is None and status.retryable is False
    stored = live.approval(created["id"])
    assert stored.action == "process_refund"  # camelCase names take the catalogue's snake_case spelling
    assert stored.risk_level == "medium" and stored.callback_url == "http://127.0.0.1:9/hook"
    assert stored.justification == "Damaged in transit"


def test_cancelled_reads_rejected_and_retryable(live: Live, sdk: CheqpointClient) -> None:
    cancelled = sdk.create_request(action="send_email", summary="Email", details={"to": "a@b.co"})
    actor = Actor("system", live.connection_id, "the agent")
    live.run(live.container.approvals.cancel(live.connection_id, cancelled["id"], actor))
    status = sdk.get_request(cancelled["id"])
    assert (status.status, status.retryable, status.decision_reason_code) == ("REJECTED", True, "CANCELLED")


def test_expired_reads_rejected_and_retryable(make_settings: Callable[..., Any], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  approvers: [U012ABCDEF]\n  expires_in: 1s\n")
    for served in start_live(make_settings(policy_file=policy)):
        sdk = CheqpointClient(api_key=served.key, base_url=served.url, timeout=10)
        with pytest.raises(RejectedError) as caught:  # the running worker expires it
            sdk.checkpoint(action="send_email", summary="Email", details={"to": "a@b.co"}, poll_interval=0.1)
        status = sdk.get_request(caught.value.request_id)
        assert (status.status, status.retryable, status.decision_reason_code) == ("REJECTED", True, "EXPIRED")
        assert status.response_notes == "Expired before a decision."


def test_rule_decision_reads_auto_decided(make_settings: Callable[..., Any]) -> None:
    settings = make_settings(policy_file=POLICIES / "contract_example.yaml")
    for served in start_live(settings):
        sdk = CheqpointClient(api_key=served.key, base_url=served.url)
        small = {**REFUND["details"], "amount_cents": 2000}
        created = sdk.create_request(action="issue_refund", summary="Small duplicate", details=small)
        status = sdk.get_request(created["id"])
        assert status.status == "APPROVED" and status.auto_decided is True
        assert status.auto_decision_rule_name == "small duplicate refunds"
        assert status.decision_reason_code == "POLICY_RULE" and status.retryable is False


def test_request_sync_approved_within_the_hold(live: Live, sdk: CheqpointClient) -> None:
    reviewer = live.decide_when_pending("approve", edits={"reason": "requested_by_customer"})
    started = time.monotonic()
    answer = sdk.request_sync(action="issue_refund", summary="Refund", details=REFUND["details"], timeout_ms=8000)
    reviewer.join()
    assert time.monotonic() - started < 5  # released by the decision, not by the time running out
    assert answer["status"] == "approved" and answer["approvalId"] == answer["id"]
    assert answer["modifiedDetails"]["reason"] == "requested_by_customer"
    assert answer["details"] == REFUND["details"]


def test_request_sync_rejected(live: Live, sdk: CheqpointClient) -> None:
    reviewer = live.decide_when_pending("reject", note="Policy says no")
    answer = sdk.request_sync(action="send_email", summary="Email", details={"to": "a@b.co"}, timeout_ms=8000)
    reviewer.join()
    assert answer["status"] == "rejected" and answer["decisionNote"] == "Policy says no"


def test_request_async_then_decided(live: Live, sdk: CheqpointClient) -> None:
    answer = sdk.request_async(action="send_email", summary="Email", details={"to": "a@b.co"},
                               callback_url="http://127.0.0.1:9/cb")
    assert answer["status"] == "pending" and answer["approvalId"] == answer["id"]
    assert answer["reviewUrl"] is None  # no Slack message yet: nothing to link to
    assert live.approval(answer["id"]).callback_url == "http://127.0.0.1:9/cb"
    live.decide(answer["id"], "approve")
    assert sdk.get_request(answer["id"]).status == "APPROVED"


def test_execute_true_is_honoured_for_catalogue_actions(live: Live) -> None:
    response = httpx.post(f"{live.url}/api/webhooks/inbound", headers={"x-api-key": live.key},
                          json={**DECIDE_ONLY_REFUND, "execute": True})
    assert response.status_code == 200
    assert live.approval(response.json()["id"]).execute is True


# ---- bad input ------------------------------------------------------------------------------------------

def test_missing_or_wrong_key(live: Live) -> None:
    with pytest.raises(CheqpointError) as missing:
        CheqpointClient(api_key="", base_url=live.url).create_request(action="a", summary="s", details={})
    assert missing.value.status_code == 401 and "x-api-key" in str(missing.value)
    with pytest.raises(CheqpointError) as wrong:
        CheqpointClient(api_key="cq_wrong", base_url=live.url).get_request("apr_x")
    assert wrong.value.status_code == 401 and wrong.value.response_body == {"error": str(wrong.value)}
    assert live.count() == 0


def test_body_api_key_must_match_the_header(live: Live) -> None:
    body = {"action": "send_email", "summary": "s", "details": {}}
    mismatch = httpx.post(f"{live.url}/api/approvals/request", headers={"x-api-key": live.key},
                          json={**body, "apiKey": "cq_someone_else"})
    assert mismatch.status_code == 401 and "does not match" in mismatch.json()["error"]
    assert live.count() == 0
    body_only = httpx.post(f"{live.url}/api/approvals/request", json={**body, "apiKey": live.key})
    assert body_only.status_code == 200 and body_only.json()["status"] == "PENDING"


def test_max_wait_beyond_the_cap_is_held_at_the_cap(live: Live) -> None:
    live.app.state.compat_max_wait_ms = 300
    started = time.monotonic()
    response = httpx.post(f"{live.url}/api/webhooks/inbound", headers={"x-api-key": live.key}, timeout=30,
                          json={"action": "send_email", "summary": "s", "details": {}, "maxWaitMs": 600_000})
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert 0.25 <= elapsed < 5


@pytest.mark.parametrize("score", [1.5, -0.1])
def test_risk_score_outside_zero_to_one(live: Live, sdk: CheqpointClient, score: float) -> None:
    with pytest.raises(CheqpointError) as caught:
        sdk.create_request(action="send_email", summary="s", details={}, risk_score=score)
    assert caught.value.status_code == 400 and "riskScore" in str(caught.value)
    assert live.count() == 0


def test_unknown_fields_are_accepted_and_ignored(live: Live) -> None:
    body = {"action": "send_email", "summary": "s", "details": {"to": "x"}, "sdkVersion": "9.9",
            "tags": ["a"], "context": {"nested": True}, "riskScore": None}
    response = httpx.post(f"{live.url}/api/approvals/request", headers={"x-api-key": live.key}, json=body)
    assert response.status_code == 200
    stored = live.approval(response.json()["id"])
    assert stored.details == {"to": "x"} and stored.extra == {} and stored.risk_level is None


@pytest.mark.parametrize(("body", "words"), [
    ({"action": "send_email", "summary": "s"}, "details"),
    ({"action": "issue_refund", "summary": "s", "details": {"amount_cents": 5}}, "charge_id"),
    ({"action": "send_email", "summary": "s", "details": {}, "riskLevel": "extreme"}, "riskLevel"),
    ({"action": "send_email", "summary": "s", "details": {}, "webhookUrl": "ftp://x.example/cb"}, "http"),
    ({"action": "send_email", "summary": "s", "details": {}, "metadata": {"a": {"b": 1}}}, "metadata.a"),
])
def test_bad_bodies_are_answered_with_an_error(live: Live, body: dict[str, Any], words: str) -> None:
    response = httpx.post(f"{live.url}/api/webhooks/inbound", headers={"x-api-key": live.key}, json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"} and words in response.json()["error"]
    assert live.count() == 0


def test_malformed_json_and_unknown_ids(live: Live) -> None:
    headers = {"x-api-key": live.key, "content-type": "application/json"}
    broken = httpx.post(f"{live.url}/api/approvals/request", headers=headers, content=b"{not json")
    assert broken.status_code == 400 and broken.json() == {"error": "the request body is not valid JSON"}
    missing = httpx.get(f"{live.url}/api/approvals/apr_missing", headers=headers)
    assert missing.status_code == 404 and "apr_missing" in missing.json()["error"]
    _, other_key, _ = live.new_connection("other-agent")
    theirs = httpx.post(f"{live.url}/api/approvals/request", headers={"x-api-key": other_key},
                        json={"action": "send_email", "summary": "s", "details": {}}).json()["id"]
    assert httpx.get(f"{live.url}/api/approvals/{theirs}", headers=headers).status_code == 404


def test_oversized_body_is_413_with_an_error(live: Live) -> None:
    body = {"action": "send_email", "summary": "s", "details": {"text": "x" * (300 * 1024)}}
    response = httpx.post(f"{live.url}/api/approvals/request", headers={"x-api-key": live.key}, json=body)
    assert response.status_code == 413
    assert response.json() == {"error": "request bodies are limited to 256 KB"}


def test_idempotency_key_is_honoured(live: Live) -> None:
    headers = {"x-api-key": live.key, "Idempotency-Key": "email-7"}
    body = {"action": "send_email", "summary": "s", "details": {"to": "x"}}
    first = httpx.post(f"{live.url}/api/approvals/request", headers=headers, json=body).json()
    again = httpx.post(f"{live.url}/api/approvals/request", headers=headers, json=body).json()
    assert again["id"] == first["id"]
    other = httpx.post(f"{live.url}/api/approvals/request", headers=headers, json={**body, "summary": "other"})
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["error"]
    assert live.count() == 1
