"""One counter row: what the approvals of one key, created in one time bucket, add to the totals."""

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base


class UsageTotal(Base):
    """`scope` "connection": `subject` is the Connection's id; "customer": the Stripe customer id.
    `currency` is "" when the details name none. `span` is the bucket's length in seconds (3600 or 60)
    and `starts_at` its start; `count` and `amount` (minor units) are those of the approvals created
    in it that are counted now (see api/policy/totals.py). The key puts the time before the currency:
    a read names a bucket range, with or without a currency, and finds it in one index range."""

    __tablename__ = "usage_totals"
    __table_args__ = (PrimaryKeyConstraint("scope", "subject", "action", "span", "starts_at", "currency",
                                           name="pk_usage_totals"),
                      # The hourly prune's `starts_at < cutoff`: the key cannot serve it (time is not first).
                      Index("ix_usage_totals_starts_at", "starts_at"))

    scope: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(32))
    span: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
