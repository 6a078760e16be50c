"""alerts: the summary's sentence id and values, so it is shown in the reader's language

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 03:20:00.000000

Nullable: alerts raised before keep only their English summary, which is what they are shown with.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alerts', sa.Column('summary_params', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('summary_params')
