"""records: the old clear customer notes sealed into the record and dropped; record cities folded for search

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 23:40:00.000000

Sealing needs the keyring, which a migration does not hold: the caller that has it (`vault init`, through
`vault.db.schema.upgrade(..., seal_notes=...)`) hands over a function that seals the clear notes of every
customer into its record on this migration's connection (`vault.services.legacy_notes`). Without one, the
upgrade goes on only when no customer has clear notes, so nothing is ever dropped unsealed.
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import context, op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

SEAL_NOTES = "seal_notes"


def _fold(text: str) -> str:
    # The same folding as vault.models.customers.name_key, frozen here as migrations must be.
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())[:100]


def upgrade() -> None:
    with op.batch_alter_table('customer_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('city_key', sa.String(length=100), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_customer_records_city_key'), ['city_key'], unique=False)
    connection = op.get_bind()
    records = sa.table('customer_records', sa.column('customer_id', sa.Integer), sa.column('city', sa.String),
                       sa.column('city_key', sa.String))
    for row in connection.execute(sa.select(records.c.customer_id, records.c.city)).all():
        connection.execute(records.update().where(records.c.customer_id == row.customer_id)
                           .values(city_key=_fold(row.city)))

    customers = sa.table('customers', sa.column('id', sa.Integer), sa.column('notes', sa.Text))
    with_notes = connection.scalar(sa.select(sa.func.count()).select_from(customers)
                                   .where(sa.func.length(sa.func.trim(customers.c.notes)) > 0)) or 0
    if with_notes:
        seal_notes = context.config.attributes.get(SEAL_NOTES)
        if seal_notes is None:
            raise RuntimeError(f"{with_notes} customer(s) have notes in clear, which this upgrade seals into their "
                               "records with the keyring: run `vault init` to upgrade.")
        seal_notes(connection)
        left = connection.scalar(sa.select(sa.func.count()).select_from(customers)
                                 .where(sa.func.length(sa.func.trim(customers.c.notes)) > 0)) or 0
        if left:
            raise RuntimeError(f"{left} customer(s) still have notes in clear after sealing; nothing was dropped.")
    # A plain ALTER TABLE … DROP COLUMN (SQLite 3.35 and later, PostgreSQL): a batch copy would drop and
    # recreate `customers`, and with foreign keys enforced that drop would cascade into every record.
    op.drop_column('customers', 'notes')


def downgrade() -> None:
    # The notes stay sealed in the records; the old column comes back empty.
    op.add_column('customers', sa.Column('notes', sa.Text(), nullable=False, server_default=''))
    with op.batch_alter_table('customer_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_records_city_key'))
        batch_op.drop_column('city_key')
