"""The `cheqpoint` command as real processes, for the operations tests: started, waited for, signalled."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CHEQPOINT = str(Path(sys.executable).with_name("cheqpoint"))
ROOT = Path(__file__).resolve().parents[1]
# Variables of the developer's own shell that would change what the processes do.
_UNSET = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "STRIPE_SECRET_KEY",
          "CHEQPOINT_POLICY_FILE", "LOG_FORMAT", "LOG_LEVEL")


def environment(database_url: str, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    # The tree under test first on the path, whatever the venv's own install points at.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(DATABASE_URL=database_url, CHEQPOINT_CALLBACK_ALLOW_PRIVATE="true", **values)
    return env


def cheqpoint(database_url: str, *args: str, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHEQPOINT, *args], capture_output=True, text=True, env=environment(database_url, **values),
                          timeout=60, check=False, cwd=ROOT)


def new_connection(database_url: str) -> dict[str, str]:
    created = cheqpoint(database_url, "connections", "create", "--name", "ops-agent", "--json")
    assert created.returncode == 0, created.stderr
    return json.loads(created.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """One `cheqpoint` process with its stderr kept in a file (the logs are read after it ends)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        # A session of its own, so `kill()` also ends whatever it started (a cluster's replicas).
        self.popen = subprocess.Popen([CHEQPOINT, *args], env=env, cwd=ROOT, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then the exit code (killed and failed if it does not exit in time)."""
        if self.popen.poll() is None:
            self.popen.terminate()
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.popen.args} did not exit within {timeout} s of SIGTERM") from None
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL to its whole process group (children that outlived it included)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._log.close()


def wait_until_serving(url: str, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"the server exited with {process.popen.returncode}:\n{process.log()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server did not answer within {timeout} s:\n{process.log()}")


@contextmanager
def served(database_url: str, log_path: Path, *args: str, **values: str) -> Iterator[tuple[str, Process]]:
    """`cheqpoint serve` on a free port; yields its URL and the process (killed if the test left it running)."""
    port = free_port()
    process = Process(["serve", "--port", str(port), *args], environment(database_url, **values), log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url, process
    finally:
        process.kill()


def wait_for(predicate: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
