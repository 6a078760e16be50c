"""the custodian an approver designates for one release, when the file's own custodian is away

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('loans') as batch:
        batch.add_column(sa.Column('release_custodian_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_loans_release_custodian_id_users'), 'users',
                                 ['release_custodian_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('loans') as batch:
        batch.drop_constraint(op.f('fk_loans_release_custodian_id_users'), type_='foreignkey')
        batch.drop_column('release_custodian_id')
