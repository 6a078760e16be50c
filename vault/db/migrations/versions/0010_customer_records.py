"""customer records: structured facts, encrypted contacts/terms/notes, versions, contact log, reveal usage

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models.base

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_records',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('legal_name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('industry', sa.String(length=100), nullable=False),
    sa.Column('size', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=False),
    sa.Column('contacts', sa.LargeBinary(), nullable=True),
    sa.Column('terms', sa.LargeBinary(), nullable=True),
    sa.Column('notes', sa.LargeBinary(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_customer_records_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_customer_records_updated_by_id_users')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_records'))
    )
    op.create_table('customer_record_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed', sa.String(length=300), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_customer_record_versions_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_customer_record_versions_author_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_record_versions')),
    sa.UniqueConstraint('customer_id', 'number', name=op.f('uq_customer_record_versions_customer_id'))
    )
    with op.batch_alter_table('customer_record_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_record_versions_customer_id'), ['customer_id'], unique=False)
    op.create_table('customer_contact_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('happened_on', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('verification', sa.Boolean(), nullable=False),
    sa.Column('main_contact', sa.Boolean(), nullable=False),
    sa.Column('logged_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                            name=op.f('fk_customer_contact_log_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_customer_contact_log_author_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_contact_log'))
    )
    with op.batch_alter_table('customer_contact_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_contact_log_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_contact_log_author_id'), ['author_id'], unique=False)
    op.create_table('reveal_usage',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('target', sa.Integer(), nullable=False),
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_reveal_usage_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', 'scope', 'target', 'period', name=op.f('pk_reveal_usage'))
    )


def downgrade() -> None:
    op.drop_table('reveal_usage')
    with op.batch_alter_table('customer_contact_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_contact_log_author_id'))
        batch_op.drop_index(batch_op.f('ix_customer_contact_log_customer_id'))
    op.drop_table('customer_contact_log')
    with op.batch_alter_table('customer_record_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_record_versions_customer_id'))
    op.drop_table('customer_record_versions')
    op.drop_table('customer_records')
