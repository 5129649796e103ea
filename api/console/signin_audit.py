"""Console sign-ins and sign-outs in the audit trail: who, and what came of it.

Only people Slack has identified are recorded: a callback with a forged code or state names
nobody, and since anyone on the internet can send one, recording it would let strangers fill the
append-only trail. Entries never hold the code, the state, a token or a cookie; the actor is the
Slack user, as for their decisions.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import service as audit
from api.db import Database

SIGNED_IN, REFUSED, SIGNED_OUT = "console.signed_in", "console.sign_in_refused", "console.signed_out"


def _actor(user_id: str, name: str | None) -> dict[str, Any]:
    return {"type": "slack_user", "id": user_id, "name": name}


async def _write(db: Database, event: str, actor: dict[str, Any], detail: dict[str, Any]) -> None:
    async def record(session: AsyncSession) -> None:
        audit.record(session, event, actor=actor, detail=detail)

    await db.write(record)


async def signed_in(db: Database, user_id: str, name: str, team_id: str, role: str) -> None:
    await _write(db, SIGNED_IN, _actor(user_id, name), {"outcome": "signed_in", "role": str(role), "team": team_id})


async def refused(db: Database, user_id: str, name: str, team_id: str, reason: str) -> None:
    await _write(db, REFUSED, _actor(user_id, name), {"outcome": "refused", "reason": reason, "team": team_id})


async def signed_out(db: Database, user_id: str, name: str) -> None:
    await _write(db, SIGNED_OUT, _actor(user_id, name), {"outcome": "signed_out"})
