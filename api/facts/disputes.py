"""close_dispute / submit_dispute_evidence against the dispute: it must still await a response."""

from datetime import datetime, timedelta
from typing import Any

from api.facts.common import named, plural
from api.facts.models import Contradicted, Verification, from_unix, iso_unix
from api.facts.reader import FactsReader

OPEN = ("needs_response", "warning_needs_response")
DUE_SOON = timedelta(days=3)


async def verify_dispute(reader: FactsReader, details: dict[str, Any], now: datetime, *,
                         fresh: bool = False) -> Verification:
    dispute = await named(reader.dispute(details["dispute_id"], fresh=fresh), reader, "dispute_id", "dispute")
    status = dispute["status"]
    if status not in OPEN:
        raise Contradicted("dispute_id", f"is {status}; only a dispute that still needs a response can be "
                                         f"closed or given evidence")
    due_by = (dispute.get("evidence_details") or {}).get("due_by")
    charge = dispute.get("charge")
    facts = {"dispute": {"id": dispute["id"], "status": status, "reason": dispute.get("reason"),
                         "amount": dispute["amount"], "currency": dispute["currency"],
                         "evidence_due_by": iso_unix(due_by),
                         "charge": charge.get("id") if isinstance(charge, dict) else charge}}
    warnings = []
    due = from_unix(due_by)
    if due is not None and due < now:
        warnings.append("evidence is past due")
    elif due is not None and due - now < DUE_SOON:
        warnings.append(f"evidence is due in {plural(max((due - now).days, 0), 'day')}")
    return Verification("verified", reader.livemode, now, facts, warnings)
