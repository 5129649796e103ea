"""Per-Connection limits (CONTRACT §9): request rate, lookups, pending approvals, concurrent holds.

Their state lives in the database, not in a process, so they hold across replicas: rates and pending
counts are counted from the approvals table under a per-Connection lock (see `serialize`), holds are
rows in `connection_holds`.
"""

from api.limits.gate import IntakeGate, Ticket
from api.limits.holds import HoldSlots
from api.limits.intake import IntakeLimits, check_before_lookup, check_intake
from api.limits.locks import serialize

__all__ = ["HoldSlots", "IntakeGate", "IntakeLimits", "Ticket", "check_before_lookup", "check_intake", "serialize"]
