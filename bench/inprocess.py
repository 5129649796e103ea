"""The app called as ASGI in this process, for the in-process cost tools (asgi_cost, rehold_cost,
idle_holds): no uvicorn, no sockets, so the CPU they divide is the app's own."""

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

BODY = json.dumps({
    "action": "issue_refund",
    "summary": "Refund duplicate charge ch_3NxYz for $349.00",
    "details": {"charge_id": "ch_3NxYzAbCdEfGhIjK", "amount_cents": 34900, "currency": "usd",
                "reason": "duplicate", "customer_id": "cus_QaAbCdEfGhIjK"},
    "justification": "Customer provided proof of duplicate charge within dispute window.",
}).encode()  # bench/intake.py's body


def use_uvloop() -> None:
    """The event loop the served app runs on (uvicorn picks uvloop when it is installed)."""
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


async def bench_app(name: str, policy: Path | None = None) -> tuple[Any, str]:
    """A new SQLite database with one Connection, and the app on it as bench/servers.py runs it (the
    per-Connection limits off, the product's other defaults); (app, the Connection's key)."""
    from api.config import Settings
    from api.connections import service
    from api.db import Database
    from api.main import create_app
    from api.migrate import upgrade

    url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / f'{name}.db'}"
    db = Database(url)
    await upgrade(db.engine)
    key = (await db.write(lambda session: service.create(session, "bench"))).key
    await db.close()
    settings = Settings(_env_file=None, database_url=url, limit_requests_per_minute=0, limit_lookups_per_minute=0,
                        limit_pending=0, limit_holds=0, approvers=["UBENCHREVIEWER"], policy_file=policy)
    return create_app(settings), key


def _scope(method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": query, "headers": headers, "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000), "state": {}}


async def call(app: Any, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]],
               body: bytes = b"") -> tuple[int, bytes]:
    """One request through the app: (status, body)."""
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, object]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]  # type: ignore[assignment]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))  # type: ignore[arg-type]

    hdrs = list(headers)
    if body:
        hdrs.append((b"content-length", str(len(body)).encode()))
    await app(_scope(method, path, query, hdrs), receive, send)
    return status, b"".join(chunks)
