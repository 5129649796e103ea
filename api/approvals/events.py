"""What happened to an approval, as the approval service tells its subscribers (`Effects`).

The values are the strings stored in outbox payloads, callbacks' `approval.<event>` types and
metrics labels; a StrEnum keeps them exactly those strings while the code names them by member.
"""

from enum import StrEnum


class Event(StrEnum):
    CREATED = "created"                 # pending, waiting for reviewers: a surface asks for review
    AUTO_DECIDED = "auto_decided"       # a rule approved or rejected it at intake (then approved / rejected)
    VOTE = "vote"                       # one approval of several recorded; still pending
    REVISED = "revised"                 # a reviewer's edit made a new revision (after its "vote"): ask again
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    EXECUTED = "executed"
    EXECUTION_FAILED = "execution_failed"
    EXECUTION_UPDATED = "execution_updated"  # Stripe reported a later outcome (a refund failed, a payout paid, …)
    VERIFIED = "verified"               # a request accepted unverified was verified against Stripe later

    @property
    def is_final(self) -> bool:
        """The decision is made (by a person, a rule, the clock or the agent): no more votes count."""
        return self in _FINAL

    @property
    def is_execution(self) -> bool:
        """Stripe's side: the money moved, failed to move, or its outcome changed later."""
        return self in _EXECUTION


_FINAL = frozenset({Event.APPROVED, Event.REJECTED, Event.EXPIRED, Event.CANCELLED})
_EXECUTION = frozenset({Event.EXECUTED, Event.EXECUTION_FAILED, Event.EXECUTION_UPDATED})
