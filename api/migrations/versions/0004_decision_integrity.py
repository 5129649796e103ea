"""decision integrity: a request's content revision, votes bound to it, one vote per person

Revision ID: 0004
Revises: 0003

`approvals.revision` counts reviewers' edits (1 = as the agent asked). Each vote records the revision
it approved, and the unique key becomes (approval, revision, person): the same Slack id voting from
Slack and from the CLI is one vote, and an edit opens a new round in which everyone may vote again.
`decisions.via` keeps the OS user and host of a CLI decision beside the person it was made as.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("via", JSON, nullable=True))
        batch_op.drop_constraint("uq_decisions_actor", type_="unique")
        batch_op.create_unique_constraint("uq_decisions_person", ["approval_id", "revision", "actor_id"])


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_decisions_person", type_="unique")
        batch_op.create_unique_constraint("uq_decisions_actor", ["approval_id", "actor_type", "actor_id"])
        batch_op.drop_column("via")
        batch_op.drop_column("revision")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_column("revision")
