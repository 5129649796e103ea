"""The `cheqpoint` command as operators run it — a separate process on the same database — with the
settings a test chooses (Slack's among them, so the process's effects reach the fake Slack)."""

import getpass
import os
import socket
import subprocess
import sys
from pathlib import Path

CLI = [str(Path(sys.executable).with_name("cheqpoint"))]
_ISOLATED = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "STRIPE_SECRET_KEY",
             "STRIPE_API_BASE", "CHEQPOINT_POLICY_FILE", "CHEQPOINT_REVIEW_CHANNEL", "CHEQPOINT_APPROVERS")


def operator_cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in _ISOLATED}
    environment.update({"DATABASE_URL": database_url, **env})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=environment, timeout=60, check=False)


def this_operator() -> dict[str, str]:
    """Who the audit trail must name for a command run from this test: the OS user and the host."""
    return {"type": "operator", "id": getpass.getuser(), "host": socket.gethostname()}
