"""Intake's audit entry is queued as built (no copy read back from its JSON): the chain still verifies.

The entry's values are hashed as they are in memory at the commit and verified later from what the
database returns; these requests put enums, non-ASCII text, nested details (outside the catalogue)
and a rule's decision at intake in the entry, and `cheqpoint audit verify` must find every link.
"""

import itertools

from sqlalchemy import select

from api.audit.models import AuditEvent
from tests.conftest import REFUND
from tests.operator_cli import operator_cli


async def test_intake_entries_verify_from_what_the_database_returns(client, auth, container, database_url):
    bodies = [
        {**REFUND, "summary": "Rückerstattung ✓ für Kunde", "metadata": {"ticket": "T-1", "ünïcode": "é"},
         "agentName": "bot", "riskLevel": "high", "priority": "urgent", "execute": False},
        {"action": "custom_action", "summary": "outside the catalogue", "execute": False,
         "details": {"nested": {"b": [1, 2.5, None, True], "a": {"z": "\u2028"}}, "n": 10**20}},
        {**REFUND, "details": {**REFUND["details"], "amount_cents": 100}},
    ]
    for index, body in enumerate(bodies):
        response = await client.post("/v1/approvals", json=body, headers={**auth, "Idempotency-Key": f"k{index}"})
        assert response.status_code in (200, 202), response.text
    async with container.db.read() as session:
        entries = list((await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())
    created = [entry for entry in entries if entry.event == "approval.created"]
    assert len(created) == 3
    assert created[0].detail["request"]["summary"] == "Rückerstattung ✓ für Kunde"
    assert created[0].after == {"status": "pending", "execution": "not_requested", "modifiedDetails": None}
    assert created[1].detail["request"]["details"] == bodies[1]["details"]
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    result = operator_cli(database_url, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"intact: {len(entries)} entries" in result.stdout
