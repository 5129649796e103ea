"""Writes to the audit trail. There is no update or delete here, on purpose.

Entries join the hash chain when their transaction commits (`api.audit.chain`); JSON fields are
stored as they will read back, so their hashes verify later on either database.
"""

import getpass
import socket
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import chain
from api.db import utcnow
from api.ids import new_id


def record(
    session: AsyncSession,
    event: str,
    *,
    approval_id: str | None = None,
    connection_id: str | None = None,
    actor: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> str:
    """Queue one entry; it is numbered, hashed and inserted as the transaction commits. Returns its id."""
    entry_id = new_id("evt")
    chain.queue(getattr(session, "sync_session", session), {
        "id": entry_id, "at": session.info.get("clock", utcnow)(), "event": event, "approval_id": approval_id,
        "connection_id": connection_id, "actor": chain.normalised(actor), "before": chain.normalised(before),
        "after": chain.normalised(after), "detail": chain.normalised(detail)})
    return entry_id


def os_operator() -> dict[str, Any]:
    """Who runs this command: the OS account and the machine, as recorded for operator actions."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER variable (some containers)
        user = "unknown"
    return {"type": "operator", "id": user, "name": user, "host": socket.gethostname()}
