"""The operators' CLI as a separate process: --version, exit codes in --help, the outbox's parked jobs
listed (text and --json) and requeued, --json on callbacks, and the replay's progress bar on a terminal."""

import asyncio
import json
import os
import pty
import subprocess
from pathlib import Path

import httpx

from api.main import build_container, running
from api.outbox.service import enqueue
from tests.conftest import REFUND
from tests.live import start_live
from tests.ops_processes import CHEQPOINT, ROOT, cheqpoint, environment


def test_version_and_exit_codes_in_help(database_url):
    version = cheqpoint(database_url, "--version")
    assert version.returncode == 0 and version.stdout.startswith("cheqpoint 0.")
    helped = cheqpoint(database_url, "--help")
    assert "Exit codes: 0 done" in helped.stdout and "--install-completion" in helped.stdout
    assert "3 not found" in cheqpoint(database_url, "jobs", "requeue", "--help").stdout


async def _park_a_job(settings) -> None:  # type: ignore[no-untyped-def]
    """A job no handler knows: the worker parks it at its first attempt, as it parks any hopeless job."""
    container = build_container(settings)
    async with running(container, worker=False):
        await container.db.write(lambda session: enqueue(session, "ops.unknown_kind", {"approval_id": "apr_x"}))
        await container.worker.drain()


def test_parked_jobs_are_listed_and_requeued(database_url, settings):
    assert cheqpoint(database_url, "jobs", "list").stdout.strip() == "no jobs waiting"
    assert cheqpoint(database_url, "jobs", "list", "--parked").stdout.strip() == "no parked jobs"
    asyncio.run(_park_a_job(settings))

    listed = cheqpoint(database_url, "jobs", "list", "--parked", "--json")
    assert listed.returncode == 0, listed.stderr
    [job] = json.loads(listed.stdout)["data"]
    assert job["kind"] == "ops.unknown_kind" and job["status"] == "parked" and job["approvalId"] == "apr_x"
    assert "no handler" in job["lastError"]
    assert job["id"] in cheqpoint(database_url, "jobs", "list").stdout

    assert cheqpoint(database_url, "jobs", "requeue", job["id"]).returncode == 0
    [again] = json.loads(cheqpoint(database_url, "jobs", "list", "--json").stdout)["data"]
    assert again["status"] == "queued" and again["maxAttempts"] > job["maxAttempts"]
    assert cheqpoint(database_url, "jobs", "requeue", job["id"]).returncode == 4  # not parked any more
    assert cheqpoint(database_url, "jobs", "requeue", "job_missing").returncode == 3
    assert cheqpoint(database_url, "jobs", "requeue").returncode == 2

    asyncio.run(_park_a_job(settings))  # parks the requeued one again, and a second
    requeued = cheqpoint(database_url, "jobs", "requeue", "--all-parked")
    assert requeued.stdout.strip() == "2 parked jobs queued to run again"


def test_callbacks_list_and_show_speak_json(database_url):
    listed = cheqpoint(database_url, "callbacks", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == {"data": []}
    assert cheqpoint(database_url, "callbacks", "show", "msg_missing", "--json").returncode == 3


def test_policy_replay_shows_progress_on_a_terminal_and_json_on_request(database_url, make_settings, tmp_path: Path):
    for live in start_live(make_settings()):
        for _ in range(3):
            httpx.post(f"{live.url}/v1/approvals", json=REFUND, headers={"Authorization": f"Bearer {live.key}"})
    policy = ROOT / "tests" / "policies" / "first_match.yaml"

    as_json = cheqpoint(database_url, "policy", "replay", str(policy), "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["total"] == 3 and report["perRule"]["any refund"] == 3 and len(report["changes"]) == 3

    primary, secondary = pty.openpty()  # a terminal, as an operator's shell is
    process = subprocess.Popen([CHEQPOINT, "policy", "replay", str(policy)], stdin=secondary, stdout=secondary,
                               stderr=secondary, env={**environment(database_url), "COLUMNS": "100"}, cwd=ROOT)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=60) == 0
    os.close(primary)
    assert b"replaying" in seen and b"3/3" in seen, seen[-500:]
    assert b"Replayed 3 requests" in seen
