"""A real browser for the console's tests: Debian's chromium driven by Playwright, never a downloaded build.

`/usr/bin/chromium` comes from Debian's `chromium` package; when it is missing and this runs as
root with apt-get, the fixture installs it (`apt-get install -y chromium`), as CI does on a fresh
machine; otherwise the browser tests are skipped with the reason.
"""

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Set to a folder (docs/img) to keep the screenshots the browser test takes.
SCREENSHOTS = os.environ.get("CHEQPOINT_CONSOLE_SCREENSHOTS")


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium) and cannot be installed here")
    result = subprocess.run([apt, "install", "-y", "chromium"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        subprocess.run([apt, "update"], capture_output=True, check=False)
        subprocess.run([apt, "install", "-y", "chromium"], capture_output=True, check=False)
    if not CHROMIUM.exists():
        pytest.skip("apt-get could not install Debian's chromium; the console's browser tests need it")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@contextlib.contextmanager
def serve_on(app: FastAPI, port: int) -> Iterator[str]:
    """The app on a port chosen beforehand: the console's own URL (its OpenID redirect) must be known
    when its settings are made."""
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the console's server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
