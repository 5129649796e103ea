"""Start-up checks: an unreachable database is one clear line and exit 1 (no traceback, no password);
a Slack set-up that cannot work is a warning at start that says what to fix."""

from pathlib import Path

import httpx
import pytest

from api.startup import slack_problems
from tests.fakes.slack import FakeSlack
from tests.ops_processes import cheqpoint, free_port, served
from tests.slack_helpers import APPROVER, SECRET, TOKEN


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_an_unreachable_database_is_one_line_and_exit_1(command: list[str]):
    url = f"postgresql+asyncpg://cheq:pw-s3cret-value@127.0.0.1:{free_port()}/nowhere"
    result = cheqpoint(url, *command)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and "pw-s3cret-value" not in output
    assert "database unreachable (PostgreSQL at 127.0.0.1:" in output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_sqlite_file_that_cannot_be_opened_is_one_line_too(tmp_path: Path):
    result = cheqpoint(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/cheqpoint.db", "serve", "--port", "0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "database unreachable (SQLite at" in result.stderr


def _slack_env(slack_url: str, channel: str, token: str = TOKEN) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack_url,
            "CHEQPOINT_REVIEW_CHANNEL": channel, "CHEQPOINT_APPROVERS": APPROVER, "LOG_FORMAT": "console"}


def _start_and_stop(database_url: str, log: Path, env: dict[str, str]) -> str:
    with served(database_url, log, **env) as (_url, process):
        assert process.stop() == 0
    return process.log()


def test_a_review_channel_without_the_bot_is_a_warning_at_start(database_url, tmp_path: Path):
    slack = FakeSlack(token=TOKEN)
    slack.add_channel("C0OUTSIDE", member=False)
    with slack.serving() as slack_url:
        log = _start_and_stop(database_url, tmp_path / "serve.log", _slack_env(slack_url, "C0OUTSIDE"))
    assert "WARNING cheqpoint.startup: Slack: the bot is not a member of review channel C0OUTSIDE" in log
    assert "/invite" in log


async def test_each_slack_problem_names_its_fix(make_settings):
    slack = FakeSlack(token=TOKEN)
    slack.add_channel("C0OUTSIDE", member=False)
    with slack.serving() as slack_url:
        def settings(channel: str = FakeSlack.REVIEW_CHANNEL, token: str = TOKEN):
            return make_settings(slack_bot_token=token, slack_signing_secret=SECRET, slack_api_url=slack_url,
                                 review_channel=channel, approvers=[APPROVER])

        async with httpx.AsyncClient() as http:
            assert await slack_problems(settings(), http) == []  # all well: nothing to say
            [not_member] = await slack_problems(settings("C0OUTSIDE"), http)
            assert "not a member of review channel C0OUTSIDE" in not_member
            slack.fail_next("conversations.info", "missing_scope")
            [scope] = await slack_problems(settings(), http)
            assert "missing scope" in scope and "channels:read" in scope
            [unknown] = await slack_problems(settings("C0NOSUCH"), http)
            assert "C0NOSUCH not found" in unknown
            [token] = await slack_problems(settings(token="xoxb-wrong"), http)
            assert "auth.test failed (invalid_auth)" in token and "xoxb-wrong" not in token
