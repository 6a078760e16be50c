"""view_tallies: a person's views per customer and local day, which the early-warning rules count from

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 00:30:00.000000

The rules counted a person's views of the day (and the customers of their last 24 hours) from the views
table after every view, so a bulk reader's every further view cost more than the one before. The views of
the last two days that the rules have already evaluated are tallied here, so the counts go on where they
stood; views not yet evaluated are tallied when the maintenance sweep evaluates them.

A local day is the working-hours timezone's: the caller that knows it (`vault init`, through
`vault.db.schema.upgrade(..., zone=...)`) hands its name over; without one, the days are UTC's (the
setting's default).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import context, op

import vault.models.base

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

ZONE = "zone"
# The rules' widest window: the last 24 hours, from a view opened now (a local day lasts up to 25 hours).
_BACK = timedelta(hours=50)


def upgrade() -> None:
    op.create_table('view_tallies',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.Column('last_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_view_tallies_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_view_tallies_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'day', 'customer_id', name=op.f('pk_view_tallies'))
    )
    op.create_index(op.f('ix_view_tallies_day'), 'view_tallies', ['day'], unique=False)
    zone = ZoneInfo(context.config.attributes.get(ZONE) or "UTC")
    when = vault.models.base.UTCDateTime
    views = sa.table('document_views', sa.column('user_id', sa.Integer), sa.column('document_id', sa.Integer),
                     sa.column('opened_at', when), sa.column('alerts_at', when))
    documents = sa.table('documents', sa.column('id', sa.Integer), sa.column('customer_id', sa.Integer))
    tallies: dict[tuple[int, object, int], list] = {}
    for user_id, customer_id, opened_at in op.get_bind().execute(
        sa.select(views.c.user_id, documents.c.customer_id, views.c.opened_at)
        .join(documents, documents.c.id == views.c.document_id)
        .where(views.c.opened_at >= datetime.now(UTC) - _BACK, views.c.alerts_at.is_not(None))
    ):
        tally = tallies.setdefault((user_id, opened_at.astimezone(zone).date(), customer_id), [0, opened_at])
        tally[0] += 1
        tally[1] = max(tally[1], opened_at)
    if tallies:
        table = sa.table('view_tallies', sa.column('user_id', sa.Integer), sa.column('day', sa.Date),
                         sa.column('customer_id', sa.Integer), sa.column('views', sa.Integer),
                         sa.column('last_at', when))
        op.bulk_insert(table, [{"user_id": user_id, "day": day, "customer_id": customer_id, "views": count,
                                "last_at": last_at}
                               for (user_id, day, customer_id), (count, last_at) in tallies.items()])


def downgrade() -> None:
    op.drop_index(op.f('ix_view_tallies_day'), table_name='view_tallies')
    op.drop_table('view_tallies')
