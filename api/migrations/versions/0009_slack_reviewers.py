"""slack reviewers

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import api.db

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_digests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_key", sa.String(length=300), nullable=False),
        sa.Column("open_key", sa.String(length=300), nullable=True),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=True),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=True),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("rendered_changes", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_key"),
    )
    with op.batch_alter_table("slack_digests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slack_digests_group_key"), ["group_key"], unique=False)
    op.create_table(
        "slack_digest_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("digest_id", sa.String(length=40), nullable=False),
        sa.Column("approval_id", sa.String(length=40), nullable=False),
        sa.Column("shown_revision", sa.Integer(), nullable=True),
        sa.Column("shown_generation", sa.Integer(), nullable=True),
        sa.Column("added_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["approval_id"], ["approvals.id"]),
        sa.ForeignKeyConstraint(["digest_id"], ["slack_digests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("approval_id"),
    )
    with op.batch_alter_table("slack_digest_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slack_digest_items_digest_id"), ["digest_id"], unique=False)
    op.create_table(
        "slack_claims",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("approval_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("claimed_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["approval_id"], ["approvals.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("approval_id", "user_id", name="uq_slack_claims_approval_user"),
    )
    with op.batch_alter_table("slack_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slack_claims_approval_id"), ["approval_id"], unique=False)


def downgrade() -> None:
    op.drop_table("slack_claims")
    op.drop_table("slack_digest_items")
    op.drop_table("slack_digests")
