"""views remember when their early-warning rules ran (they run after the opening commits)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models.base

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('document_views', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alerts_at', vault.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_document_views_alerts_at'), ['alerts_at'], unique=False)
    # Views opened before this revision had their rules evaluated inside their opening.
    op.execute("UPDATE document_views SET alerts_at = opened_at")


def downgrade() -> None:
    with op.batch_alter_table('document_views', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_views_alerts_at'))
        batch_op.drop_column('alerts_at')
