"""slack messages: where each review message is moves off approvals into Slack's own table

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

import api.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _drop_slack_columns() -> None:
    """On SQLite a batch would rebuild `approvals` (copy, drop, rename), and with foreign keys on
    the drop fails on every vote, claim and delivery that points at it (deferring the keys does not
    help: the count of broken references survives the rename). SQLite 3.35+ drops a plain column in
    place, so the batch is told never to rebuild; on PostgreSQL these are plain ALTERs anyway."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.dialect.dbapi.sqlite_version_info < (3, 35):
        raise RuntimeError("this migration needs SQLite 3.35 or newer (ALTER TABLE … DROP COLUMN); "
                           f"this Python has {bind.dialect.dbapi.sqlite_version}")
    with op.batch_alter_table("approvals", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("slack_ts")
        batch_op.drop_column("slack_channel")


def upgrade() -> None:
    op.create_table(
        "slack_messages",
        sa.Column("approval_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("posted_at", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["approval_id"], ["approvals.id"]),
        sa.PrimaryKeyConstraint("approval_id"),
    )
    # Every message already posted keeps working: its buttons, updates and thread replies find it here.
    # The time it was posted was never stored, so it stays unknown (NULL).
    op.execute("INSERT INTO slack_messages (approval_id, channel, ts, posted_at) "
               "SELECT id, COALESCE(slack_channel, ''), slack_ts, NULL FROM approvals WHERE slack_ts IS NOT NULL")
    _drop_slack_columns()


def downgrade() -> None:
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slack_channel", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("slack_ts", sa.String(length=40), nullable=True))
    op.execute("UPDATE approvals SET "
               "slack_channel = (SELECT channel FROM slack_messages WHERE approval_id = approvals.id), "
               "slack_ts = (SELECT ts FROM slack_messages WHERE approval_id = approvals.id)")
    op.drop_table("slack_messages")
