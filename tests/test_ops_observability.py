"""A served process through a request's whole life — intake, the Slack message, a reviewer's click,
the Stripe refund, the signed callback — then `/metrics` is scraped and every log line is read back:
each must be one JSON object carrying the ids it is about, and no secret may appear anywhere."""

import json
import time
from pathlib import Path

import httpx

from bot.ids import ActionId, review_actions_block_id
from tests.conftest import REFUND
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.fakes.slack import FakeSlack
from tests.fakes.stripe import FakeStripe
from tests.ops_processes import new_connection, served, wait_for
from tests.slack_helpers import APPROVER, REVIEW, SECRET, TOKEN, block_actions, interactivity_body, signature_headers

STRIPE_KEY = "sk_test_observabilitysecret123"


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (a missing sample fails the test)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        metric, _, rest = series.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if metric == name and got == wanted:
            return float(value)
    raise AssertionError(f"no sample {name}{{{wanted}}} in /metrics")


def _with_password(database_url: str) -> tuple[str, str | None]:
    """On PostgreSQL, a URL with a password (the test server trusts local connections, so any works)."""
    if not database_url.startswith("postgresql"):
        return database_url, None
    password = "db-pass-observability"
    return database_url.replace("postgres@", f"postgres:{password}@", 1), password


def test_a_requests_whole_life_is_measured_and_logged_as_json_without_secrets(database_url, tmp_path: Path):
    database_url, db_password = _with_password(database_url)
    conn = new_connection(database_url)
    slack = FakeSlack(token=TOKEN)
    receiver = CallbackReceiver(conn["webhookSecret"])
    with slack.serving() as slack_url, FakeStripe() as stripe, serve(receiver.app) as hooks_url:
        charge = stripe.add_charge(34900, customer="cus_QaAbCdEfGhIjK")
        env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack_url,
               "CHEQPOINT_REVIEW_CHANNEL": REVIEW, "CHEQPOINT_APPROVERS": APPROVER,
               "STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_API_BASE": stripe.url, "LOG_FORMAT": "json"}
        with served(database_url, tmp_path / "serve.log", **env) as (url, process):
            auth = {"Authorization": f"Bearer {conn['key']}", "X-Request-Id": "req-from-agent-1"}
            body = {**REFUND, "details": {**REFUND["details"], "charge_id": charge["id"]},
                    "callbackUrl": f"{hooks_url}/hook"}
            created = httpx.post(f"{url}/v1/approvals", json=body, headers=auth, timeout=10)
            assert created.status_code == 202, created.text
            assert created.headers["x-request-id"] == "req-from-agent-1"
            approval_id = created.json()["approvalId"]
            # A key in a query string (a common client mistake) must not reach the log either.
            httpx.get(f"{url}/api/approvals/{approval_id}?apiKey={conn['key']}", timeout=10)

            wait_for(lambda: bool(slack.messages[REVIEW]), what="the review message")
            [(ts, message)] = slack.messages[REVIEW].items()
            actions = next(b for b in message["blocks"] if b.get("block_id") == review_actions_block_id(approval_id))
            value = next(e["value"] for e in actions["elements"] if e["action_id"] == ActionId.APPROVE)
            click = interactivity_body(block_actions(ActionId.APPROVE, value, actions["block_id"], user=APPROVER,
                                                     channel=REVIEW, message_ts=ts))
            answered = httpx.post(f"{url}/slack/events", content=click, headers=signature_headers(click), timeout=10)
            assert answered.status_code == 200, answered.text

            def executed() -> bool:
                got = httpx.get(f"{url}/v1/approvals/{approval_id}", headers=auth, timeout=10).json()
                return got["execution"]["status"] == "succeeded"

            wait_for(executed, what="the refund to be executed")
            receiver.wait_for_events(2, timeout=10)  # approved, executed
            time.sleep(0.5)  # the callback job records its outcome after the receiver answered
            scraped = httpx.get(f"{url}/metrics", timeout=10)
            assert process.stop() == 0
    log_text = process.log()

    # ---- /metrics ----
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    metrics = scraped.text
    assert _metric(metrics, "cheqpoint_approvals_total", action="issue_refund", outcome="pending") == 1
    assert _metric(metrics, "cheqpoint_approvals_total", action="issue_refund", outcome="approved") == 1
    assert _metric(metrics, "cheqpoint_approvals_total", action="issue_refund", outcome="executed") == 1
    assert _metric(metrics, "cheqpoint_approval_decision_seconds_count", action="issue_refund",
                   outcome="approved") == 1
    assert _metric(metrics, "cheqpoint_approval_execution_seconds_count", action="issue_refund",
                   outcome="executed") == 1
    assert _metric(metrics, "cheqpoint_holds_open") == 0
    assert _metric(metrics, "cheqpoint_vendor_call_seconds_count", vendor="slack", method="chat.postMessage",
                   status="ok") >= 1
    assert _metric(metrics, "cheqpoint_vendor_call_seconds_count", vendor="stripe", method="POST /v1/refunds",
                   status="200") == 1
    assert _metric(metrics, "cheqpoint_callback_deliveries", status="delivered") == 2
    assert _metric(metrics, "cheqpoint_callback_oldest_pending_seconds") == 0
    assert _metric(metrics, "cheqpoint_job_attempts_total", kind="stripe.execute", outcome="done") == 1
    assert "cheqpoint_outbox_jobs" in metrics and "cheqpoint_outbox_oldest_due_seconds" in metrics

    # ---- logs: every line one JSON object ----
    lines = [line for line in log_text.splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"a log line is not JSON: {line!r}") from None
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "cheqpoint.access"]
    intake = next(r for r in access if r["method"] == "POST" and r["path"] == "/v1/approvals")
    assert intake["request_id"] == "req-from-agent-1" and intake["connection_id"] == conn["id"]
    assert any(r["approval_id"] == approval_id and r["connection_id"] == conn["id"] for r in access)
    assert all(r["request_id"] for r in access)

    # ---- and no secret anywhere ----
    secrets = {"connection key": conn["key"], "webhook secret": conn["webhookSecret"], "bot token": TOKEN,
               "signing secret": SECRET, "Stripe key": STRIPE_KEY, "database password": db_password}
    leaked = [name for name, value in secrets.items() if value and value in log_text]
    assert not leaked, f"secrets in the log: {leaked}"
    assert "apiKey" not in log_text


def test_a_newline_in_an_unverified_request_cannot_forge_a_log_line(database_url, tmp_path: Path):
    slack = FakeSlack(token=TOKEN)
    forged = '{"level": "INFO", "logger": "cheqpoint", "message": "operator approved apr_123"}'
    with slack.serving() as slack_url:
        env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack_url,
               "CHEQPOINT_REVIEW_CHANNEL": REVIEW, "CHEQPOINT_APPROVERS": APPROVER}
        with served(database_url, tmp_path / "serve.log", **env) as (url, process):
            body = f"command=%2Fcheqpoint&text=hello\n{forged}\n".encode()  # a form field with newlines in it
            unsigned = httpx.post(f"{url}/slack/events", content=body, timeout=10, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=forged"})
            assert unsigned.status_code == 401
            assert process.stop() == 0
    lines = [line for line in process.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is still one JSON object…
    assert not any(r.get("message") == "operator approved apr_123" for r in records)  # …and none is the forgery
