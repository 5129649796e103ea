"""The words an approval's state is spelled with, as enums.

Values are exactly the strings stored in the database and sent on the wire (CONTRACT §3), so
switching from bare strings changed no row and no response. They are `StrEnum`s: a member equals,
hashes and serialises as its value, which keeps JSON, f-strings and the audit chain's hashes as
they were.
"""

from enum import StrEnum


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class ExecutionStatus(StrEnum):
    NOT_REQUESTED = "not_requested"  # the agent makes the call itself, or nothing to call
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Verdict(StrEnum):
    """One reviewer's vote (a `Decision` row), whichever surface it came from."""

    APPROVE = "approve"
    REJECT = "reject"


class PolicyVerdict(StrEnum):
    """What a policy rule decides about a request at intake (the rule's `decision`)."""

    PASS = "pass"        # run at once without review: read-only lookups only
    APPROVE = "approve"  # approved by the rule, no person asked
    REJECT = "reject"
    REVIEW = "review"    # ask people


FINAL_STATUSES = (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED,
                  ApprovalStatus.CANCELLED)
# Execution states after which nothing more will happen to an approved request.
SETTLED_EXECUTION = (ExecutionStatus.NOT_REQUESTED, ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)
