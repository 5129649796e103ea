"""usage totals: running velocity counters, filled from the approvals already stored

Revision ID: 0011
Revises: 0010
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import api.db
from api.usage.keys import COUNTED, SPANS, WINDOW, bucket_start, contributions

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Only counters a window can still read are filled; a margin covers clocks that disagree a little.
BACKFILL_SINCE = WINDOW + timedelta(hours=2)


class _Row:
    """What `contributions()` reads of an approval."""

    def __init__(self, mapping: Any) -> None:
        self.__dict__.update(mapping)


def _backfill() -> None:
    approvals = sa.table("approvals", sa.column("connection_id", sa.String), sa.column("action", sa.String),
                         sa.column("status", sa.String), sa.column("details", JSON),
                         sa.column("execution_result", JSON),
                         sa.column("created_at", api.db.UTCDateTime(timezone=True)))
    query = (sa.select(approvals)
             .where(approvals.c.status.in_(COUNTED),
                    approvals.c.created_at >= datetime.now(UTC) - BACKFILL_SINCE))
    sums: defaultdict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for mapping in op.get_bind().execute(query).mappings():
        row = _Row(mapping)
        for key, (count, amount) in contributions(row).items():
            for span in SPANS:
                bucket = sums[(*key, span, bucket_start(row.created_at, span))]
                bucket[0] += count
                bucket[1] += amount
    totals = sa.table("usage_totals", *(sa.column(name) for name in ("scope", "subject", "action", "currency",
                                                                       "span", "count", "amount")),
                      sa.column("starts_at", api.db.UTCDateTime(timezone=True)))
    rows = [dict(zip(("scope", "subject", "action", "currency", "span", "starts_at"), key, strict=True),
                 count=count, amount=amount) for key, (count, amount) in sorted(sums.items())]
    for first in range(0, len(rows), 500):
        op.bulk_insert(totals, rows[first:first + 500])


def upgrade() -> None:
    op.create_table(
        "usage_totals",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=32), nullable=False),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("starts_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject", "action", "span", "starts_at", "currency",
                                name="pk_usage_totals"),
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.create_index("ix_approvals_created", ["created_at"], unique=False)
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_approvals_created")
    op.drop_table("usage_totals")
