"""usage totals: an index on starts_at, so the hourly prune finds the old rows without a full scan

The primary key leads with scope, subject and action, so `starts_at < cutoff` could not use it: every
prune batch read the whole table (a day of per-minute and per-hour counters for every key).

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_totals", schema=None) as batch_op:
        batch_op.create_index("ix_usage_totals_starts_at", ["starts_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_totals", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_totals_starts_at")
