"""audit chain and key rotation

Revision ID: 0005
Revises: 0004
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import api.db

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_GENESIS = "0" * 64

_APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
"""


def _canonical(value: Any) -> str:
    # The same canonical form as api.audit.chain, copied so this revision never changes with the code.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _chain_existing_rows() -> None:
    """Entries written before the chain existed join it in the order they were written."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        'SELECT id, at, event, approval_id, connection_id, actor, "before", "after", detail '
        "FROM audit_events ORDER BY at, id")).all()
    prev = _GENESIS
    for seq, row in enumerate(rows, start=1):
        at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(str(row.at))
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        fields = {"id": row.id, "seq": seq, "at": at.isoformat(timespec="microseconds"), "event": row.event,
                  "approvalId": row.approval_id, "connectionId": row.connection_id,
                  "actor": _decoded(row.actor), "before": _decoded(row.before), "after": _decoded(row.after),
                  "detail": _decoded(row.detail), "prevHash": prev}
        digest = hashlib.sha256(_canonical(fields).encode("utf-8")).hexdigest()
        bind.execute(sa.text("UPDATE audit_events SET seq = :seq, prev_hash = :prev, hash = :hash WHERE id = :id"),
                     {"seq": seq, "prev": prev, "hash": digest, "id": row.id})
        prev = digest


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_rows()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f("ix_audit_events_seq"), ["seq"], unique=True)

    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_key_expires_at", api.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("previous_webhook_secret", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", api.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index(batch_op.f("ix_connections_previous_key_hash"), ["previous_key_hash"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_FUNCTION)
        op.execute(_APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connections_previous_key_hash"))
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_webhook_secret")
        batch_op.drop_column("previous_key_expires_at")
        batch_op.drop_column("previous_key_hash")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_seq"))
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
