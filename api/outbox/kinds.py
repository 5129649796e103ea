"""The outbox's vocabulary: the core's job kinds, a job's status, one attempt's outcome.

Values are the strings stored in `jobs.kind`, `jobs.status` and `job_attempts.outcome`. Adapters
register kinds of their own (the Slack adapter's are `bot.kinds.SlackJob`), so `jobs.kind` stays a
plain string column: the registry maps any string, and a StrEnum member is that string.
"""

from enum import StrEnum


class JobKind(StrEnum):
    EXPIRE_APPROVAL = "approval.expire"
    EXECUTE = "stripe.execute"
    VERIFY = "stripe.verify"  # a request accepted while Stripe could not be asked
    DELIVER_CALLBACK = "callback.deliver"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    PARKED = "parked"  # gave up; an operator may requeue it


class AttemptOutcome(StrEnum):
    DONE = "done"
    RETRY = "retry"
    PARKED = "parked"
    DEFERRED = "deferred"  # waited for a rate limit's slot: not counted as an attempt


# Jobs that still need the worker, or an operator (parked).
OPEN_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PARKED)
