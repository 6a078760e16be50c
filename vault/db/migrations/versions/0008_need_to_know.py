"""need to know: managers, co-owners, folded customer names, customer reads, suspended customer access

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:30:00.000000
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

import vault.models.base

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _fold(name: str) -> str:
    # The same folding as vault.services.customers.name_key, frozen here as migrations must be.
    decomposed = unicodedata.normalize("NFKD", name or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())[:200]


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manager_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('customers_suspended_at', vault.models.base.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_users_manager_id'), ['manager_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_users_manager_id_users'), 'users', ['manager_id'], ['id'])
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.String(length=200), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_customers_name_key'), ['name_key'], unique=False)
    customers = sa.table('customers', sa.column('id', sa.Integer), sa.column('name', sa.String),
                         sa.column('name_key', sa.String))
    connection = op.get_bind()
    for row in connection.execute(sa.select(customers.c.id, customers.c.name)).all():
        connection.execute(customers.update().where(customers.c.id == row.id).values(name_key=_fold(row.name)))
    op.create_table('customer_co_owners',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.Column('added_at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], name=op.f('fk_customer_co_owners_added_by_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_co_owners_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_customer_co_owners_user_id_users')),
    sa.PrimaryKeyConstraint('customer_id', 'user_id', name=op.f('pk_customer_co_owners'))
    )
    op.create_index(op.f('ix_customer_co_owners_user_id'), 'customer_co_owners', ['user_id'], unique=False)
    op.create_table('customer_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('at', vault.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_access_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_customer_access_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_access'))
    )
    op.create_index('ix_customer_access_user_at', 'customer_access', ['user_id', 'at'], unique=False)
    op.create_index(op.f('ix_customer_access_customer_id'), 'customer_access', ['customer_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_customer_access_customer_id'), table_name='customer_access')
    op.drop_index('ix_customer_access_user_at', table_name='customer_access')
    op.drop_table('customer_access')
    op.drop_index(op.f('ix_customer_co_owners_user_id'), table_name='customer_co_owners')
    op.drop_table('customer_co_owners')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_name_key'))
        batch_op.drop_column('name_key')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_manager_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_users_manager_id'))
        batch_op.drop_column('customers_suspended_at')
        batch_op.drop_column('manager_id')
