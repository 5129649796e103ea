"""The `cheqpoint` command, run as operators run it: a separate process on the same database."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from api.connections.auth import CACHE_SECONDS
from api.main import create_app
from tests.conftest import REFUND, TEST_APPROVERS
from tests.fakes.server import serve

CLI = [str(Path(sys.executable).with_name("cheqpoint"))]


def cheqpoint(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DATABASE_URL": database_url, "CHEQPOINT_APPROVERS": ",".join(TEST_APPROVERS),
                   **env}
    for name in ("SLACK_BOT_TOKEN", "STRIPE_SECRET_KEY", "CHEQPOINT_POLICY_FILE"):
        environment.pop(name, None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=environment, timeout=60, check=False)


@pytest.fixture
def served(settings):
    with serve(create_app(settings)) as base_url:
        yield base_url


def new_connection(database_url: str) -> dict[str, str]:
    created = cheqpoint(database_url, "connections", "create", "--name", "billing-agent", "--json")
    assert created.returncode == 0, created.stderr
    return json.loads(created.stdout)


def test_connections_create_list_revoke(database_url, served):
    conn = new_connection(database_url)
    assert conn["key"].startswith("cq_") and conn["webhookSecret"].startswith("whsec_")
    listing = cheqpoint(database_url, "connections", "list")
    assert conn["id"] in listing.stdout and conn["key"] not in listing.stdout
    headers = {"Authorization": f"Bearer {conn['key']}"}
    assert httpx.get(f"{served}/v1/approvals", headers=headers).status_code == 200
    assert cheqpoint(database_url, "connections", "revoke", conn["id"]).returncode == 0
    time.sleep(CACHE_SECONDS)  # another process revoked it: the server's key cache lets go within this
    assert httpx.get(f"{served}/v1/approvals", headers=headers).status_code == 401
    assert cheqpoint(database_url, "connections", "revoke", "con_missing").returncode == 3


def test_operator_edit_releases_a_held_request(database_url, served):
    conn = new_connection(database_url)
    headers = {"Authorization": f"Bearer {conn['key']}"}
    answer: dict[str, object] = {}

    def agent() -> None:
        response = httpx.post(f"{served}/v1/approvals", json={**REFUND, "timeoutMs": 20_000}, headers=headers,
                              timeout=30)
        answer["body"], answer["at"] = response.json(), time.perf_counter()

    thread = threading.Thread(target=agent)
    thread.start()
    pending = []
    for _ in range(100):
        pending = httpx.get(f"{served}/v1/approvals?status=pending", headers=headers).json()["data"]
        if pending:
            break
        time.sleep(0.05)
    approval_id = pending[0]["approvalId"]
    decided = cheqpoint(database_url, "approvals", "approve", approval_id, "--as", "UOPS", "--note", "Half only",
                        "--set", "amount_cents=17450", "--set", "reason=requested_by_customer")
    decided_at = time.perf_counter()
    assert decided.returncode == 0, decided.stderr
    assert "amount_cents: 34900 → 17450" in decided.stdout
    thread.join(timeout=10)
    body = answer["body"]
    assert body["status"] == "approved"
    assert body["modifiedDetails"]["amount_cents"] == 17450
    assert body["changes"]["reason"] == {"from": "duplicate", "to": "requested_by_customer"}
    assert body["decidedBy"] == {"type": "operator", "id": "UOPS", "name": None}
    # Another process decided: the poller releases the hold within half a second.
    assert answer["at"] - decided_at < 0.5

    again = cheqpoint(database_url, "approvals", "reject", approval_id, "--as", "UBOB", "--note", "too late")
    assert again.returncode == 4 and "already approved" in again.stderr
    shown = cheqpoint(database_url, "approvals", "show", approval_id)
    assert "approval.approved" in shown.stdout and "approval.created" in shown.stdout


def test_cli_bad_input_gets_a_message_and_an_exit_code(database_url, served):
    conn = new_connection(database_url)
    headers = {"Authorization": f"Bearer {conn['key']}"}
    approval_id = httpx.post(f"{served}/v1/approvals", json=REFUND, headers=headers).json()["approvalId"]
    cases = [
        (("approvals", "approve", "apr_missing", "--as", "UOPS"), 3, "no approval"),
        (("approvals", "approve", approval_id, "--as", "UOPS", "--set", "amount_cents"), 2, "FIELD=VALUE"),
        (("approvals", "approve", approval_id, "--as", "UOPS", "--set", "amount_cents=abc"), 2, "amount_cents"),
        (("approvals", "approve", approval_id, "--as", "UOPS", "--set", "charge_id=ch_other"), 2, "charge_id"),
        (("approvals", "approve", approval_id, "--as", "UOPS", "--set", "amount_cents=0"), 2, "amount_cents"),
        (("approvals", "reject", approval_id, "--as", "UOPS", "--note", "  "), 2, "note"),
        (("approvals", "approve", approval_id), 2, "--as"),
        (("approvals", "approve", approval_id, "--as", "ops"), 2, "Slack user id"),
        (("approvals", "list", "--status", "weird"), 2, "status"),
    ]
    for args, code, words in cases:
        result = cheqpoint(database_url, *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    state = httpx.get(f"{served}/v1/approvals/{approval_id}", headers=headers).json()
    assert state["status"] == "pending" and state["modifiedDetails"] is None
    bad_config = cheqpoint(database_url, "approvals", "list", CHEQPOINT_APPROVERS="nobody")
    assert bad_config.returncode == 2 and "CHEQPOINT_APPROVERS" in bad_config.stderr
