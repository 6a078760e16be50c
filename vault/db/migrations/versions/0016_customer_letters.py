"""letters: the letter introducing a customer's new account manager, its single-use link, the customer's answer

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 01:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models.base

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'customer_letters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('handover_item_id', sa.Integer(), nullable=True),
        sa.Column('cause', sa.String(length=32), nullable=False),
        sa.Column('previous_owner_id', sa.Integer(), nullable=True),
        sa.Column('new_owner_id', sa.Integer(), nullable=False),
        sa.Column('change_key', sa.String(length=120), nullable=False),
        sa.Column('contact_index', sa.Integer(), nullable=False),
        sa.Column('contact_label', sa.String(length=120), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=True),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('revoked_by_id', sa.Integer(), nullable=True),
        sa.Column('answered_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('answer', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['handover_item_id'], ['handover_items.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['new_owner_id'], ['users.id']),
        sa.ForeignKeyConstraint(['outbox_id'], ['mail_outbox.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['previous_owner_id'], ['users.id']),
        sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('change_key', 'contact_index'),
        sa.UniqueConstraint('token_hash'),
    )
    with op.batch_alter_table('customer_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_letters_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_letters_handover_item_id'), ['handover_item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_letters_new_owner_id'), ['new_owner_id'], unique=False)
    # Plain ADD COLUMN (nullable): a batch copy of `handover_items` is not needed and would rebuild it.
    op.add_column('handover_items', sa.Column('customer_answer', sa.String(length=16), nullable=True))
    op.add_column('handover_items', sa.Column('customer_answered_at', vault.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('handover_items', schema=None) as batch_op:
        batch_op.drop_column('customer_answered_at')
        batch_op.drop_column('customer_answer')
    with op.batch_alter_table('customer_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_letters_new_owner_id'))
        batch_op.drop_index(batch_op.f('ix_customer_letters_handover_item_id'))
        batch_op.drop_index(batch_op.f('ix_customer_letters_customer_id'))
    op.drop_table('customer_letters')
