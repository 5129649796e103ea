"""Writes to the audit trail. There is no update or delete here, on purpose."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audit.models import AuditEvent
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
) -> AuditEvent:
    entry = AuditEvent(id=new_id("evt"), at=session.info.get("clock", utcnow)(), event=event,
                       approval_id=approval_id, connection_id=connection_id, actor=actor,
                       before=before, after=after, detail=detail)
    session.add(entry)
    return entry
