"""audit_events: an index on the person and the action, for the rules' "revealed from here before" question

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08 00:40:00.000000

After every view and every reveal the early-warning rules ask whether the person revealed contacts from
the act's address, named place or declared place before (`vault.alerts.rules.REVEALED_FROM`): the person's
`customer:reveal` records. With an index on the person and one on the action, each apart, PostgreSQL read
every record the person ever caused (each page opened, each search, each sign-in), or combined that with
everyone's reveals; through this one it reads the person's reveals only (a person with 3,000 records, 30
of them reveals, in a log of 8,850: 0.26 ms before, 0.10 ms after).

Built by a plain CREATE INDEX in the upgrade's one transaction, not CONCURRENTLY: `vault init` applies
every revision in a single transaction (all or nothing), and PostgreSQL builds an index concurrently only
outside a transaction block, which would commit the revisions before it and leave a failed build behind
as an invalid index. A plain build keeps appends to the audit log waiting while it reads the table (about
a second per million records). Where the log is too large for that, an operator can
build the same index beforehand, while the service runs:

    CREATE INDEX CONCURRENTLY ix_audit_events_actor_action ON audit_events (actor_id, action);

(and check that it is valid); this revision then finds it and builds nothing.

The index on the person alone (`ix_audit_events_actor_id`, from 0001) is a prefix of this one, so every
search by the person alone (the report's, the loan history's, the desk's filter) uses this one instead,
and the old index only cost every append to the log its upkeep: it is dropped (a moment's lock on the
table, no scan), and the downgrade builds it again.
"""

from __future__ import annotations

from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_audit_events_actor_action', 'audit_events', ['actor_id', 'action'], if_not_exists=True)
    op.drop_index('ix_audit_events_actor_id', table_name='audit_events')


def downgrade() -> None:
    op.create_index('ix_audit_events_actor_id', 'audit_events', ['actor_id'])
    op.drop_index('ix_audit_events_actor_action', table_name='audit_events')
