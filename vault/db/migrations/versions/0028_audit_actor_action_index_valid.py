"""audit_events: rebuild the index on the person and the action if PostgreSQL holds it invalid

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08 02:10:00.000000

0026 lets an operator build `ix_audit_events_actor_action` beforehand with CREATE INDEX CONCURRENTLY, and
then builds nothing (`IF NOT EXISTS`). A concurrent build that fails (cancelled, a deadlock, the server
restarted, a unique build on duplicates) leaves an index of that name that PostgreSQL marks invalid
(`pg_index.indisvalid` false): it is still kept up on every append to the log, and no query ever uses it.
0026 took it for the index, so the early-warning rules' question went back to reading every record of the
person, with nothing to say so.

Here such an index is dropped and built again with 0026's definition (not REINDEX: a failed build may have
been of another definition, a unique one say, which would fail again). Plainly, in the upgrade's one
transaction, for the reasons 0026 gives: appends to the log wait while the table is read. The table is
locked (SHARE, which appends also wait for) before the index is looked at again, so that a concurrent build
still running when the upgrade began is waited for and, if it then succeeded, kept (should that build in
turn wait for this transaction, PostgreSQL stops one of the two as a deadlock: the upgrade fails whole,
or the build fails and its index is rebuilt here). A valid index, or none
(a database that 0026 has not reached is not this revision's business), and SQLite (which has no invalid
indexes) are left alone. The downgrade does nothing: the index it finds valid is 0026's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

INDEX = 'ix_audit_events_actor_action'
# False for an invalid index, True for a valid one, no row when there is no index of that name.
_VALID = sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql' or bind.execute(_VALID, {'name': INDEX}).scalar() is not False:
        return
    op.execute('LOCK TABLE audit_events IN SHARE MODE')
    if bind.execute(_VALID, {'name': INDEX}).scalar() is not False:
        return
    op.drop_index(INDEX, table_name='audit_events')
    op.create_index(INDEX, 'audit_events', ['actor_id', 'action'])


def downgrade() -> None:
    pass
