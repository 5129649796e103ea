"""Every ORM model, imported once so `Base.metadata` is complete (Alembic, tests)."""

from api.approvals.models import Approval, Decision
from api.audit.models import AuditEvent
from api.callbacks.models import CallbackAttempt, CallbackDelivery
from api.connections.models import Connection
from api.db import Base
from api.outbox.models import Job, JobAttempt, RateBudget
from api.stripe_webhooks.models import StripeEvent

__all__ = ["Approval", "AuditEvent", "Base", "CallbackAttempt", "CallbackDelivery", "Connection", "Decision",
           "Job", "JobAttempt", "RateBudget",
           "StripeEvent"]
