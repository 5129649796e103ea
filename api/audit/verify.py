"""Checking the hash chain, and reading the trail out for auditors.

Rows are read in `seq` order a page at a time, so a long trail is checked in constant memory.
"""

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from api.audit.chain import GENESIS, entry_hash, iso
from api.audit.models import AuditEvent
from api.db import Database

PAGE = 1000


@dataclass(frozen=True)
class Break:
    seq: int
    entry_id: str
    reason: str

    def describe(self) -> str:
        if self.entry_id == "-":
            return self.reason
        return f"entry {self.seq} ({self.entry_id}) does not verify: {self.reason}"


@dataclass(frozen=True)
class Verification:
    checked: int
    head_seq: int
    head_hash: str
    first_break: Break | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


async def entries(db: Database, since: datetime | None = None) -> AsyncIterator[AuditEvent]:
    last_seq = 0
    while True:
        query = select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(PAGE)
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        async with db.read() as session:
            page = list((await session.scalars(query)).all())
        for entry in page:
            yield entry
        if len(page) < PAGE:
            return
        last_seq = page[-1].seq


def _check(entry: AuditEvent, expected_seq: int, prev_hash: str) -> str | None:
    if entry.seq != expected_seq:
        return (f"expected entry {expected_seq} before it, found entry {entry.seq}: "
                f"entries {expected_seq}..{entry.seq - 1} were removed")
    if entry.prev_hash != prev_hash:
        return "it does not follow the entry before it (its previous hash differs: one was changed or replaced)"
    if entry.hash != entry_hash(entry):
        return "its content was changed after it was written (its hash does not match its fields)"
    return None


async def verify(db: Database, expect_head: tuple[int, str] | None = None) -> Verification:
    """Walk the chain from the first entry; stop at the first entry that does not verify.

    The chain alone cannot show that its last entries were removed (nothing follows them), so an
    auditor may pass a head recorded earlier (`seq`, `hash`): that entry must still be there, unchanged.
    """
    expected, prev, checked = 1, GENESIS, 0
    expect_seq, expect_hash = expect_head or (0, "")
    async for entry in entries(db):
        problem = _check(entry, expected, prev)
        if problem is None and entry.seq == expect_seq and entry.hash != expect_hash:
            problem = "its hash differs from the head recorded earlier"
        if problem is not None:
            return Verification(checked, expected - 1, prev, Break(entry.seq, entry.id, problem))
        checked += 1
        expected, prev = entry.seq + 1, entry.hash
    if expect_seq >= expected:
        missing = Break(expect_seq, "-", f"entry {expect_seq} is missing: the trail ends at entry {expected - 1}, "
                                         "so its last entries were removed")
        return Verification(checked, expected - 1, prev, missing)
    return Verification(checked, expected - 1, prev, None)


EXPORT_COLUMNS = ("seq", "id", "at", "event", "approvalId", "connectionId", "actor", "before", "after", "detail",
                  "prevHash", "hash")


def exported(entry: AuditEvent) -> dict[str, Any]:
    return {"seq": entry.seq, "id": entry.id, "at": iso(entry.at), "event": entry.event,
            "approvalId": entry.approval_id, "connectionId": entry.connection_id, "actor": entry.actor,
            "before": entry.before, "after": entry.after, "detail": entry.detail,
            "prevHash": entry.prev_hash, "hash": entry.hash}


def jsonl_line(entry: AuditEvent) -> str:
    return json.dumps(exported(entry), ensure_ascii=False, sort_keys=False)


def csv_header() -> str:
    return _csv_row(list(EXPORT_COLUMNS))


def csv_line(entry: AuditEvent) -> str:
    row = exported(entry)
    return _csv_row(["" if row[c] is None else json.dumps(row[c], ensure_ascii=False)
                     if isinstance(row[c], dict | list) else str(row[c]) for c in EXPORT_COLUMNS])


def _csv_row(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()
