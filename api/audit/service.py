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
    json_ready: bool = False,
) -> str:
    """Queue one entry; it is numbered, hashed and inserted as the transaction commits. Returns its id.

    `json_ready`: the caller built the four values for this entry alone, of JSON's own types (string
    keys; str and int enums count, their JSON is their value), and changes none of them before the
    commit; they are queued as given instead of a copy read back from their JSON (intake's entry,
    made on every request, spares two JSON conversions per value). Their JSON text, the one the hash
    covers, is the same either way."""
    entry_id = new_id("evt")
    if not json_ready:
        actor, before = chain.normalised(actor), chain.normalised(before)
        after, detail = chain.normalised(after), chain.normalised(detail)
    chain.queue(getattr(session, "sync_session", session), {
        "id": entry_id, "at": session.info.get("clock", utcnow)(), "event": event, "approval_id": approval_id,
        "connection_id": connection_id, "actor": actor, "before": before, "after": after, "detail": detail})
    return entry_id


def os_operator() -> dict[str, Any]:
    """Who runs this command: the OS account and the machine, as recorded for operator actions."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER variable (some containers)
        user = "unknown"
    return {"type": "operator", "id": user, "name": user, "host": socket.gethostname()}
