"""Serve an ASGI app on a real loopback port (port 0) in a background thread.

Fakes of Slack, Stripe and callback receivers, and the app itself when a client needs a real
socket (the `cheqpoint` SDK uses `requests`), all run through this.
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns signals
        pass


@contextlib.contextmanager
def serve(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` on host:0 and yield its base URL (no trailing slash) until the block ends."""
    config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="on")
    server = _Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
