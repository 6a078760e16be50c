"""document_views: an index on (user_id, opened_at) for the early-warning rules' windows

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 04:45:00.000000

The rules count a person's views in the last day and over 30 days after every view; with an index on
the person alone, each count read every view the person ever opened.
"""

from __future__ import annotations

from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_document_views_user_opened', 'document_views', ['user_id', 'opened_at'])


def downgrade() -> None:
    op.drop_index('ix_document_views_user_opened', table_name='document_views')
