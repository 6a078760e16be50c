"""mail_outbox: mail sent (or bundled into a digest) before the outbox forgot it, forgotten now

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 16:40:00.000000

A row sent now keeps its address masked to its domain and neither body (`vault.mail.retention`); rows
sent before that kept both: a list of every address ever written to, and customer letters whose bodies
held their single-use answer links. Their de-duplication keys ended in the plain address too; a key of
that old form can never equal a new one (which carries a keyed hash of the address), so it is dropped.
Failed and waiting mail keeps everything, as it still may be sent or repaired.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

_DONE = ('sent', 'digested')
_MASK = "•••"  # as vault.mail.retention writes it (copied: a migration must not change with the code)
_BATCH = 1000


def _masked(address: str) -> str:
    _local, at, domain = address.rpartition("@")
    return f"{_MASK}@{domain}" if at else _MASK


def upgrade() -> None:
    outbox = sa.table('mail_outbox', sa.column('id', sa.Integer), sa.column('recipient', sa.String),
                      sa.column('body_text', sa.Text), sa.column('body_html', sa.Text),
                      sa.column('status', sa.String), sa.column('dedupe_key', sa.String))
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(outbox.c.id, outbox.c.recipient, outbox.c.dedupe_key)
            .where(outbox.c.status.in_(_DONE), outbox.c.id > last).order_by(outbox.c.id).limit(_BATCH)).all()
        if not rows:
            return
        changes = [{"row_id": row_id, "masked": _masked(recipient),
                    "key": None if key and "@" in key else key}
                   for row_id, recipient, key in rows
                   if not recipient.startswith(_MASK) or (key and "@" in key)]
        if changes:
            connection.execute(
                outbox.update().where(outbox.c.id == sa.bindparam("row_id"))
                .values(recipient=sa.bindparam("masked"), body_text="", body_html="",
                        dedupe_key=sa.bindparam("key")),
                changes)
        last = rows[-1][0]


def downgrade() -> None:
    pass  # what was forgotten stays forgotten
