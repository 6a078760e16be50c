"""audit: the chain split into shards, each with its own head; the old single chain becomes shard 0

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 01:30:00.000000

Every existing record becomes shard 0 at `shard_seq = seq`, so its MAC and its chain stay exactly as they
were; the head row (id 1) becomes the head of shard 0 (id 0). Shard 0 is closed from here on: new records
go to shards 1..N, whose heads are created at their first append. PostgreSQL gets a sequence for the
global record number, so appends to different shards need no common lock; SQLite serialises writers
anyway and numbers them from the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # Plain ALTER TABLEs: a batch rebuild of the table on SQLite would drop its append-only triggers.
    op.add_column('audit_events', sa.Column('shard', sa.SmallInteger(), nullable=False, server_default='0'))
    op.add_column('audit_events', sa.Column('shard_seq', sa.BigInteger(), nullable=False, server_default='0'))
    # The one rewrite the log ever gets, and it changes no chained field: each record's place in shard 0.
    if postgresql:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        op.execute("UPDATE audit_events SET shard_seq = seq")
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        op.execute("ALTER TABLE audit_events ALTER COLUMN shard_seq DROP DEFAULT")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("UPDATE audit_events SET shard_seq = seq")
        op.execute("CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
                   "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only (UPDATE refused)'); END")
    op.create_index('ux_audit_events_shard_seq', 'audit_events', ['shard', 'shard_seq'], unique=True)
    op.add_column('audit_checkpoints', sa.Column('heads', sa.Text(), nullable=True))
    op.execute("UPDATE audit_head SET id = 0 WHERE id = 1")
    if postgresql:
        start = op.get_bind().execute(sa.text("SELECT coalesce(max(seq), 0) + 1 FROM audit_events")).scalar_one()
        op.execute(f"CREATE SEQUENCE audit_event_numbers START WITH {int(start)}")


def downgrade() -> None:
    """Only an unsharded log goes back: records of shards 1..N have no place in the single chain."""
    if op.get_bind().execute(sa.text("SELECT count(*) FROM audit_events WHERE shard <> 0")).scalar_one():
        raise RuntimeError("the audit log has sharded records; it cannot go back to a single chain")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS audit_event_numbers")
    op.execute("DELETE FROM audit_head WHERE id <> 0")
    op.execute("UPDATE audit_head SET id = 1 WHERE id = 0")
    op.drop_column('audit_checkpoints', 'heads')
    op.drop_index('ux_audit_events_shard_seq', table_name='audit_events')
    op.drop_column('audit_events', 'shard_seq')
    op.drop_column('audit_events', 'shard')
