"""mail_outbox: why a letter was withheld, and the last refused retry recorded, each as a code

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08 03:00:00.000000

`withheld_code`: the sender kept why it withheld a customer letter only as a sentence in `last_error`, and
the re-issue's contact-log note found the reason again by looking for words of that sentence. The sender now
keeps the refusal's code (`letters.repair_refusal`) beside it. Rows withheld before are given theirs here,
once, from the sentence the sender wrote then (`letter #N: <why>`, each reason's opening words below); a row
whose sentence is none of them (none was kept before reasons were) stays null, and the note then says only
that the letter was withheld.

`retry_refused_code`: the reason code `vault mail retry --all-failed` last recorded when it skipped the row,
so that the command, run from cron, records a mail it skips again only when the reason changed.
Null for every row here: the first run after the upgrade records each skip once more.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

_outbox = sa.table('mail_outbox', sa.column('kind', sa.String), sa.column('status', sa.String),
                   sa.column('last_error', sa.String), sa.column('withheld_code', sa.String))
# The opening of each sentence `letters.repair_refusal` has given a withheld letter (`audience.withheld` writes
# "letter #N: " before it), as LIKE patterns. Frozen here: the product's wording may change, these rows' cannot.
_SAID: tuple[tuple[str, str], ...] = (
    ('letter_answered', 'letter #%: its link was already answered%'),
    ('letter_revoked', 'letter #%: its link was revoked on %'),
    ('letter_stale', 'letter #%: the customer has changed owner since%'),
    ('letter_superseded', 'letter #%: a later change of owner wrote letters of its own%'),
    ('manager_inactive', 'letter #%: the account manager it introduces can no longer sign in%'),
    ('owner_on_notice', 'letter #%: the account manager it introduces (%) is on notice%'),
    ('letter_expired', 'letter #%: its link expired on %'),
)


def upgrade() -> None:
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withheld_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('retry_refused_code', sa.String(length=32), nullable=True))
    for code, said in _SAID:
        op.execute(_outbox.update()
                   .where(_outbox.c.status == 'withheld', _outbox.c.kind == 'customer_letter',
                          _outbox.c.withheld_code.is_(None), _outbox.c.last_error.like(said))
                   .values(withheld_code=code))


def downgrade() -> None:
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_column('retry_refused_code')
        batch_op.drop_column('withheld_code')
