from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, EnumText, utcnow
from api.outbox.kinds import AttemptOutcome, JobStatus


class Job(Base):
    """Work with an outside effect, written in the transaction that caused it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "status", "run_at"),)

    # Made here, not by the database, so a group commit inserts many in one statement.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]]
    # A dedupe key: enqueueing a second job with the same key does nothing.
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[JobStatus] = mapped_column(EnumText(JobStatus), default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # A slot a rate limiter promised this job when it deferred it ("KEY@EPOCH"); used on its next run.
    reservation: Mapped[str | None] = mapped_column(String(200))


class RateBudget(Base):
    """One rate limit's state, shared by every process on the database (a row per method and channel).

    `tat` is the theoretical arrival time of the generic cell rate algorithm: the next call may go
    at `tat - tolerance`, and each call (or reservation) moves it on by one interval.
    """

    __tablename__ = "rate_budgets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[datetime]


class JobAttempt(Base):
    __tablename__ = "job_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[AttemptOutcome] = mapped_column(EnumText(AttemptOutcome))
    error: Mapped[str | None] = mapped_column(Text)
