"""customer_letters: a column saying a letter went to an earlier address, in place of a negative position

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 00:20:00.000000

A letter to an address a leaver's edit took out of the record was marked by a negative `contact_index`
(-1, -2, ...), read back through its sign. The mark is now a column of its own, `earlier_address`, and the
position is positive (1, 2, ...: the address's place among the change's earlier addresses). The unique
constraint that kept one change from writing twice to the same position takes the column in, so a letter
to the first earlier address (1) and one to the contact at position 1 can stand side by side.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

_UNIQUE = 'uq_customer_letters_change_key'
_letters = sa.table('customer_letters', sa.column('contact_index', sa.Integer),
                    sa.column('earlier_address', sa.Boolean))


def upgrade() -> None:
    # The old constraint goes first: a position made positive may equal a current contact's of the same change.
    with op.batch_alter_table('customer_letters', schema=None) as batch_op:
        batch_op.drop_constraint(_UNIQUE, type_='unique')
        batch_op.add_column(sa.Column('earlier_address', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(_letters.update().where(_letters.c.contact_index < 0)
               .values(earlier_address=sa.true(), contact_index=-_letters.c.contact_index))
    with op.batch_alter_table('customer_letters', schema=None) as batch_op:
        batch_op.create_unique_constraint(_UNIQUE, ['change_key', 'earlier_address', 'contact_index'])


def downgrade() -> None:
    with op.batch_alter_table('customer_letters', schema=None) as batch_op:
        batch_op.drop_constraint(_UNIQUE, type_='unique')
    op.execute(_letters.update().where(_letters.c.earlier_address == sa.true())
               .values(contact_index=-_letters.c.contact_index))
    with op.batch_alter_table('customer_letters', schema=None) as batch_op:
        batch_op.drop_column('earlier_address')
        batch_op.create_unique_constraint(_UNIQUE, ['change_key', 'contact_index'])
