"""customer_letters: an index on the outbox mail a letter went as

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08 01:30:00.000000

The mail sender asks, for each customer letter's mail it claims, which letter it carries
(`CustomerLetter.outbox_id`), to withhold one that would introduce an account manager on notice; the repair
commands ask the same. Without an index each question read the whole table of letters, which grows with
every change of owner the company ever made.
"""

from __future__ import annotations

from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_customer_letters_outbox_id', 'customer_letters', ['outbox_id'])


def downgrade() -> None:
    op.drop_index('ix_customer_letters_outbox_id', table_name='customer_letters')
