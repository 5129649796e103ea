"""`cheqpoint mcp`, spawned as an MCP client spawns it and driven by the `mcp` package's own client over
stdio, against the app on a real port."""

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import REFUND
from tests.live import Live, start_live

CLI = str(Path(sys.executable).with_name("cheqpoint"))


@pytest.fixture
def live(make_settings: Callable[..., Any]) -> Iterator[Live]:
    yield from start_live(make_settings())


def environment(live: Live, **extra: str) -> dict[str, str]:
    return {"CHEQPOINT_URL": live.url, "CHEQPOINT_CONNECTION_KEY": live.key,
            "DATABASE_URL": live.container.settings.database_url, **extra}


@contextlib.asynccontextmanager
async def connected(live: Live, cwd: Path) -> AsyncIterator[Client]:
    """An MCP session with a fresh `cheqpoint mcp` process. Entered inside each test, not in a fixture:
    the client's task group must be left by the task that entered it."""
    # The working directory is empty so no developer's .env leaks into the server's settings.
    params = StdioServerParameters(command=CLI, args=["mcp"], env=environment(live), cwd=cwd)
    async with Client(params, read_timeout_seconds=30) as client:
        yield client


def text(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def facts(result: Any) -> dict[str, Any]:
    """The JSON that follows the answer's first line."""
    body = text(result)
    return json.loads(body[body.index("\n") + 1:])


# Each session spawns `cheqpoint mcp` (seconds to import), so each test covers a whole conversation.

async def test_tools_and_calls_that_do_not_fit(tmp_path: Path, live: Live) -> None:
    async with connected(live, tmp_path) as agent:
        tools = {tool.name: tool for tool in (await agent.list_tools()).tools}
        assert set(tools) == {"request_human_approval", "get_approval_status"}
        request = tools["request_human_approval"].input_schema
        assert sorted(request["required"]) == ["action", "details", "summary"]
        assert {"justification", "risk_level", "wait_seconds", "execute"} <= set(request["properties"])
        assert tools["get_approval_status"].input_schema["required"] == ["approval_id"]

        missing = await agent.call_tool("request_human_approval", {"action": "send_email", "summary": "Email"})
        assert missing.is_error and "details: missing (required)" in text(missing)
        no_id = await agent.call_tool("get_approval_status", {})
        assert no_id.is_error and "approval_id: missing (required)" in text(no_id)
        too_long = await agent.call_tool("request_human_approval", {
            "action": "send_email", "summary": "Email", "details": {}, "wait_seconds": 3600})
        assert too_long.is_error and "wait_seconds" in text(too_long)

        # The service's refusals are errors, never a REJECTED a model could take for a decision.
        refused = await agent.call_tool("request_human_approval", {
            "action": "issue_refund", "summary": "Refund", "details": {"amount_cents": 5}})
        assert refused.is_error and "charge_id" in text(refused) and "REJECTED" not in text(refused)
        unknown = await agent.call_tool("get_approval_status", {"approval_id": "apr_missing"})
        assert unknown.is_error and "404" in text(unknown)
    assert live.count() == 0


async def test_pending_then_approved_with_an_edit(tmp_path: Path, live: Live) -> None:
    async with connected(live, tmp_path) as agent:
        asked = await agent.call_tool("request_human_approval", {
            "action": "issue_refund", "summary": REFUND["summary"], "details": REFUND["details"],
            "justification": REFUND["justification"], "risk_level": "high"})
        assert not asked.is_error and text(asked).startswith("PENDING:")
        approval_id = facts(asked)["approvalId"]
        assert f'get_approval_status(approval_id="{approval_id}")' in text(asked)
        stored = live.approval(approval_id)
        assert (stored.execute, stored.risk_level, stored.agent_name) == (False, "high", "mcp")

        waited = await agent.call_tool("get_approval_status", {"approval_id": approval_id, "wait_seconds": 0.3})
        assert text(waited).startswith("TIMED_OUT:") and approval_id in text(waited)
        live.decide(approval_id, "approve", note="Half only", edits={"amount_cents": 17450})
        status = await agent.call_tool("get_approval_status", {"approval_id": approval_id})
        assert text(status).startswith("APPROVED:") and "A reviewer changed them" in text(status)
        answer = facts(status)
        assert answer["details"]["amount_cents"] == 17450 and answer["details"]["charge_id"] == "ch_3NxYzAbCdEfGhIjK"
        assert answer["note"] == "Half only"

        timed_out = await agent.call_tool("request_human_approval", {
            "action": "send_email", "summary": "Email", "details": {"to": "a@b.co"}, "wait_seconds": 0.5})
        assert text(timed_out).startswith("TIMED_OUT:")
        assert live.approval(facts(timed_out)["approvalId"]).status == "pending"


async def test_waiting_request_answers_the_rejection(tmp_path: Path, live: Live) -> None:
    async with connected(live, tmp_path) as agent:
        reviewer = live.decide_when_pending("reject", note="Outside the refund window")
        started = time.monotonic()
        answer = await agent.call_tool("request_human_approval", {
            "action": "send_email", "summary": "Email", "details": {"to": "a@b.co"}, "wait_seconds": 20})
        reviewer.join()
        assert time.monotonic() - started < 10
    assert text(answer).startswith("REJECTED:") and "Outside the refund window" in text(answer)
    assert "Do not proceed" in text(answer) and facts(answer)["reason"] == "rejected"


def test_without_a_connection_key_it_says_so(live: Live, tmp_path: Path) -> None:
    env = {**os.environ, **environment(live)}
    env.pop("CHEQPOINT_CONNECTION_KEY")
    done = subprocess.run([CLI, "mcp"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 2 and "CHEQPOINT_CONNECTION_KEY" in done.stderr and done.stdout == ""
