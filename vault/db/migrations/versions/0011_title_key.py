"""search: document titles folded for accent- and case-insensitive search

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 22:10:00.000000
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _fold(text: str) -> str:
    # The same folding as vault.models.customers.name_key, frozen here as migrations must be.
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())[:200]


def upgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title_key', sa.String(length=200), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_documents_title_key'), ['title_key'], unique=False)
    documents = sa.table('documents', sa.column('id', sa.Integer), sa.column('title', sa.String),
                         sa.column('title_key', sa.String))
    connection = op.get_bind()
    for row in connection.execute(sa.select(documents.c.id, documents.c.title)).all():
        connection.execute(documents.update().where(documents.c.id == row.id).values(title_key=_fold(row.title)))


def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_title_key'))
        batch_op.drop_column('title_key')
