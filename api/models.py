"""Every ORM model, imported once so `Base.metadata` is complete (Alembic, tests)."""

from api.approvals.models import Approval, Decision
from api.audit.models import AuditEvent
from api.callbacks.models import CallbackAttempt, CallbackDelivery
from api.connections.models import Connection
from api.db import Base
from api.limits.models import Hold
from api.outbox.models import Job, JobAttempt, RateBudget
from api.stripe_webhooks.models import StripeEvent
from api.usage.models import UsageTotal
from bot.models import Claim, Digest, DigestItem  # Slack's own tables live with the adapter

__all__ = ["Approval", "AuditEvent", "Base", "CallbackAttempt", "CallbackDelivery", "Claim", "Connection",
           "Decision", "Digest", "DigestItem", "Hold", "Job", "JobAttempt", "RateBudget", "StripeEvent", "UsageTotal"]
