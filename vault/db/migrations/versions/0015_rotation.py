"""rotation: since when each customer's owner holds it, and the rotation plan's proposals

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 01:30:00.000000

`customers.owner_since` starts, for existing customers, at the last change of owner the audit log
records (an assignment or a handover), or else at the customer's creation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch copy of `customers` would drop and recreate it, cascading into its rows.
    op.add_column('customers', sa.Column('owner_since', sa.DateTime(timezone=True), nullable=True))
    customers = sa.table('customers', sa.column('id', sa.Integer), sa.column('created_at', sa.DateTime(timezone=True)),
                         sa.column('owner_since', sa.DateTime(timezone=True)))
    events = sa.table('audit_events', sa.column('customer_id', sa.Integer), sa.column('action', sa.String),
                      sa.column('outcome', sa.String), sa.column('ts', sa.DateTime(timezone=True)))
    last_move = (sa.select(sa.func.max(events.c.ts))
                 .where(events.c.customer_id == customers.c.id,
                        events.c.action.in_(('customer:owner', 'customer:handover')),
                        events.c.outcome == 'allowed')
                 .scalar_subquery())
    op.get_bind().execute(customers.update().values(owner_since=sa.func.coalesce(last_move, customers.c.created_at)))

    op.create_table(
        'rotation_proposals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('segment', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('team_manager_id', sa.Integer(), nullable=True),
        sa.Column('from_user_id', sa.Integer(), nullable=False),
        sa.Column('proposed_user_id', sa.Integer(), nullable=False),
        sa.Column('to_user_id', sa.Integer(), nullable=False),
        sa.Column('owner_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('confirmation_note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_rotation_proposals_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['team_manager_id'], ['users.id'],
                                name=op.f('fk_rotation_proposals_team_manager_id_users')),
        sa.ForeignKeyConstraint(['from_user_id'], ['users.id'], name=op.f('fk_rotation_proposals_from_user_id_users')),
        sa.ForeignKeyConstraint(['proposed_user_id'], ['users.id'],
                                name=op.f('fk_rotation_proposals_proposed_user_id_users')),
        sa.ForeignKeyConstraint(['to_user_id'], ['users.id'], name=op.f('fk_rotation_proposals_to_user_id_users')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_rotation_proposals_created_by_id_users')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_rotation_proposals_decided_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rotation_proposals')),
    )
    with op.batch_alter_table('rotation_proposals') as batch_op:
        batch_op.create_index(batch_op.f('ix_rotation_proposals_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rotation_proposals_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_rotation_proposals_from_user_id'), ['from_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rotation_proposals_to_user_id'), ['to_user_id'], unique=False)
    op.create_index('uq_rotation_proposals_open_customer', 'rotation_proposals', ['customer_id'], unique=True,
                    sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    op.drop_index('uq_rotation_proposals_open_customer', table_name='rotation_proposals')
    op.drop_table('rotation_proposals')
    op.drop_column('customers', 'owner_since')
