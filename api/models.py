"""Every ORM model, imported once so `Base.metadata` is complete (Alembic, tests).

The surfaces' own tables (Slack's claims and digests, …) come from the modules named in
`api.surfaces.installed`, so the core never imports an adapter's package by name.
"""

from api.approvals.models import Approval, Decision
from api.audit.models import AuditEvent
from api.callbacks.models import CallbackAttempt, CallbackDelivery
from api.connections.models import Connection
from api.db import Base
from api.limits.models import Hold
from api.outbox.models import Job, JobAttempt, RateBudget
from api.stripe_webhooks.models import StripeEvent
from api.surfaces.installed import load_models
from api.usage.models import UsageTotal

load_models()

__all__ = ["Approval", "AuditEvent", "Base", "CallbackAttempt", "CallbackDelivery", "Connection", "Decision",
           "Hold", "Job", "JobAttempt", "RateBudget", "StripeEvent", "UsageTotal"]
