"""A Cheqpoint cluster under kills, and a fake Slack that remembers what reviewers were shown.

`Cluster`: two API replicas (`serve --no-worker`, each on a port of its own that survives restarts)
and one `worker`, on PostgreSQL, any of which can be SIGKILLed and started again. `WatchedSlack`:
the rate-limited fake Slack, which also records every request whose buttons a successful
`chat.postMessage` or `chat.update` put in the review channel, so "every request reached
reviewers" is read from Slack's side, not from our own bookkeeping.
"""

import copy
import random
from pathlib import Path
from typing import Any

import httpx

from bot.delivery import DIGEST_EVENT_TYPE, EVENT_TYPE
from bot.ids import review_actions_block_id
from tests.fakes.slack import FakeSlack
from tests.ops_processes import Process, environment, free_port

ACTIONS_PREFIX = review_actions_block_id("")


def listed(blocks: Any) -> list[str]:
    """The requests a message offers buttons for (its own request, or a digest's items on this page)."""
    if not isinstance(blocks, list):
        return []
    return [b["block_id"][len(ACTIONS_PREFIX):] for b in blocks
            if isinstance(b, dict) and b.get("type") == "actions" and str(b.get("block_id", "")).startswith(
                ACTIONS_PREFIX)]


class WatchedSlack(FakeSlack):
    """The fake Slack, plus the set of requests ever shown with their buttons in the review channel."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown: set[str] = set()

    def _watch(self, args: dict[str, Any]) -> None:
        if args.get("channel") == self.REVIEW_CHANNEL and not args.get("thread_ts"):
            self.shown.update(listed(args.get("blocks")))

    # Reached only when Slack accepted the call (auth, arguments and rate limits passed).
    def _chat_postMessage(self, args: dict) -> dict:
        answer = super()._chat_postMessage(args)
        self._watch(args)
        return answer

    def _chat_update(self, args: dict) -> dict:
        answer = super()._chat_update(args)
        self._watch(args)
        return answer

    def top_level(self) -> list[dict[str, Any]]:
        """A consistent copy of the review channel's top-level messages (the fake serves from a thread)."""
        with self._lock:
            messages = [copy.deepcopy(m) for m in self.messages[self.REVIEW_CHANNEL].values()]
        return [m for m in messages if not m.get("thread_ts")]


def metadata_of(message: dict[str, Any]) -> tuple[str | None, str | None]:
    """(event_type, the approval or digest id) a message carries in its Slack metadata."""
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    kind = metadata.get("event_type")
    if kind == EVENT_TYPE:
        return kind, payload.get("approval_id")
    if kind == DIGEST_EVENT_TYPE:
        return kind, payload.get("digest_id")
    return kind, None


def approve_button(message: dict[str, Any], approval_id: str) -> str | None:
    block_id = review_actions_block_id(approval_id)
    for block in message.get("blocks") or []:
        if block.get("block_id") == block_id and block.get("type") == "actions":
            for element in block["elements"]:
                if element.get("action_id") == "approve":
                    return element["value"]
    return None


class Cluster:
    """Two API replicas and a worker, each replaced by a fresh process when killed."""

    def __init__(self, database_url: str, logs: Path, **values: str) -> None:
        self.env = environment(database_url, **values)
        self.logs = logs
        self.ports = [free_port(), free_port()]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.processes: dict[str, Process] = {}
        self.started = 0
        self.kills: dict[str, int] = {"api-0": 0, "api-1": 0, "worker": 0}

    def _start(self, name: str) -> None:
        self.started += 1
        if name == "worker":
            args = ["worker"]
        else:
            args = ["serve", "--port", str(self.ports[int(name[-1])]), "--no-worker"]
        self.processes[name] = Process(args, self.env, self.logs / f"{name}-{self.started}.log")

    def start(self) -> None:
        for name in self.kills:
            self._start(name)

    def up(self, name: str) -> bool:
        """Serving (a replica) or working (the worker): killing a process still starting proves little
        and, on a busy machine, would keep the worker from ever running."""
        if name == "worker":
            return "worker started" in self.log(name)
        try:
            return httpx.get(f"{self.urls[int(name[-1])]}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def kill_one(self, rng: random.Random) -> str | None:
        """SIGKILL one running process chosen at random and start its replacement at once."""
        running = [name for name in sorted(self.kills) if self.up(name)]
        if not running:
            return None
        name = rng.choice(running)
        self.processes[name].kill()
        self.kills[name] += 1
        self._start(name)
        return name

    def log(self, name: str) -> str:
        return self.processes[name].log()

    def all_logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))

    def close(self) -> None:
        for process in self.processes.values():
            process.kill()
