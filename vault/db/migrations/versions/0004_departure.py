"""departures, handover items, early-warning alerts; a user's last working day

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('window_key', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('evidence_json', sa.Text(), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('created_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('acknowledged_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_alerts_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_alerts_resolved_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_alerts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('user_id', 'rule', 'window_key', name=op.f('uq_alerts_user_id'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_rule'), ['rule'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_severity'), ['severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_user_id'), ['user_id'], unique=False)

    op.create_table('departures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('notice_date', sa.Date(), nullable=False),
    sa.Column('successor_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('offboarded_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['completed_by_id'], ['users.id'], name=op.f('fk_departures_completed_by_id_users')),
    sa.ForeignKeyConstraint(['started_by_id'], ['users.id'], name=op.f('fk_departures_started_by_id_users')),
    sa.ForeignKeyConstraint(['successor_id'], ['users.id'], name=op.f('fk_departures_successor_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_departures_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departures')),
    sa.UniqueConstraint('user_id', name=op.f('uq_departures_user_id'))
    )
    with op.batch_alter_table('departures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_departures_status'), ['status'], unique=False)

    op.create_table('handover_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('departure_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('to_user_id', sa.Integer(), nullable=True),
    sa.Column('key', sa.Boolean(), nullable=False),
    sa.Column('key_reason', sa.String(length=100), nullable=False),
    sa.Column('transferred_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('contact_date', sa.Date(), nullable=True),
    sa.Column('confirmation_note', sa.Text(), nullable=True),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('waived_by_id', sa.Integer(), nullable=True),
    sa.Column('waived_at', vault.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('waived_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['users.id'], name=op.f('fk_handover_items_confirmed_by_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_handover_items_customer_id_customers')),
    sa.ForeignKeyConstraint(['departure_id'], ['departures.id'], name=op.f('fk_handover_items_departure_id_departures'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_user_id'], ['users.id'], name=op.f('fk_handover_items_to_user_id_users')),
    sa.ForeignKeyConstraint(['waived_by_id'], ['users.id'], name=op.f('fk_handover_items_waived_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handover_items')),
    sa.UniqueConstraint('departure_id', 'customer_id', name=op.f('uq_handover_items_departure_id'))
    )
    with op.batch_alter_table('handover_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handover_items_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_handover_items_departure_id'), ['departure_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_handover_items_to_user_id'), ['to_user_id'], unique=False)

    op.create_table('quota_exhaustions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_quota_exhaustions_document_id_documents')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_quota_exhaustions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_exhaustions'))
    )
    with op.batch_alter_table('quota_exhaustions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quota_exhaustions_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_quota_exhaustions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_day', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('access_ends_at', vault.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('access_ends_at')
        batch_op.drop_column('last_day')

    with op.batch_alter_table('quota_exhaustions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quota_exhaustions_user_id'))
        batch_op.drop_index(batch_op.f('ix_quota_exhaustions_at'))

    op.drop_table('quota_exhaustions')
    with op.batch_alter_table('handover_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handover_items_to_user_id'))
        batch_op.drop_index(batch_op.f('ix_handover_items_departure_id'))
        batch_op.drop_index(batch_op.f('ix_handover_items_customer_id'))

    op.drop_table('handover_items')
    with op.batch_alter_table('departures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_departures_status'))

    op.drop_table('departures')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_user_id'))
        batch_op.drop_index(batch_op.f('ix_alerts_status'))
        batch_op.drop_index(batch_op.f('ix_alerts_severity'))
        batch_op.drop_index(batch_op.f('ix_alerts_rule'))
        batch_op.drop_index(batch_op.f('ix_alerts_created_at'))

    op.drop_table('alerts')
