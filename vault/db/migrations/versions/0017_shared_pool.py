"""pool: claims on customers taken from the shared pool

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 01:30:00.000000

The pool is the customers without an owner; this table keeps who claimed (or was assigned) which pooled
customer, since when, and how the claim ended; a departure's handover item may send its customer back to
the pool (`handover_items.pooled_at`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models.base

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pool_claims',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('segment', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('assigned_by_id', sa.Integer(), nullable=True),
        sa.Column('started_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('end_cause', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.ForeignKeyConstraint(['assigned_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_pool_claims_customer_id', 'pool_claims', ['customer_id'], unique=False)
    op.create_index('ix_pool_claims_user_open', 'pool_claims', ['user_id', 'segment', 'ended_at'], unique=False)
    with op.batch_alter_table('handover_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pooled_at', vault.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('handover_items', schema=None) as batch_op:
        batch_op.drop_column('pooled_at')
    op.drop_index('ix_pool_claims_user_open', table_name='pool_claims')
    op.drop_index('ix_pool_claims_customer_id', table_name='pool_claims')
    op.drop_table('pool_claims')
