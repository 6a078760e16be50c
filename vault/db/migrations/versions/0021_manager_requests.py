"""manager_requests: a manager named on a page is in place only once a second administrator approves

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 16:20:00.000000

A manager sees the customers of everyone below the person, so naming one widens a reach; one
administrator alone could open a whole team's customers to an accomplice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models.base

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('manager_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('manager_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_manager_requests_decided_by_id_users')),
    sa.ForeignKeyConstraint(['manager_id'], ['users.id'], name=op.f('fk_manager_requests_manager_id_users'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'],
                            name=op.f('fk_manager_requests_requested_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_manager_requests_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manager_requests'))
    )
    op.create_index(op.f('ix_manager_requests_user_id'), 'manager_requests', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_manager_requests_user_id'), table_name='manager_requests')
    op.drop_table('manager_requests')
