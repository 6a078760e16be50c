"""`vault letter reissue LETTER_ID`: a customer letter whose mail failed for good, sent again with a new link.

A letter to a customer's main contact is the customer's voice on a handover: when its mail never arrived, the
operator sends it again from the server (the only place that holds its text). As the system, recorded under
the operator's name (`letter:reissue`); `vault mail retry` sends the same letter with the same link instead,
while that link still opens.
"""

from __future__ import annotations

import click

from vault.cli.common import cli, command_named, open_runtime, unit_of_work
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.mail.repair import ReissueRefused, record_refused, reissue
from vault.models import utcnow


@cli.group("letter")
def letter_group() -> None:
    """Letters introducing a customer's new account manager."""


@letter_group.command("reissue")
@click.argument("letter_id", type=click.IntRange(min=1))
def letter_reissue(letter_id: int) -> None:
    """Send letter LETTER_ID again, to the same address, with a fresh link for the full
    `VAULT_LETTER_LINK_DAYS` (its old link stops working), when its mail failed for good or was withheld for a
    reason that has gone since (the manager's notice withdrawn). Refused when the letter was delivered or is
    still waiting, was answered or revoked, its customer has changed owner since (the letter would introduce
    the wrong person), or the manager it introduces is on notice or cannot sign in. Audited `letter:reissue`."""
    rt = open_runtime()
    try:
        try:
            with unit_of_work(rt) as session:
                done = reissue(rt, session, letter_id, ctx=AccessContext.cli(), now=utcnow())
        except ReissueRefused as exc:
            # The re-issue's unit is rolled back by now; the refusal is recorded in one of its own.
            message = f"refused letter #{letter_id}: {exc.refusal.why}"
            try:
                with rt.db.session() as session:
                    record_refused(rt, session, AuditAction.LETTER_REISSUE, [exc.refusal], ctx=AccessContext.cli(),
                                   command=command_named())
            except Exception as failure:  # the refusal stands; say that its record is missing
                message += f"; the refusal could not be recorded: {failure}"
            raise click.ClickException(message) from None
    finally:
        rt.close()
    click.echo(f"letter #{done.letter_id} re-issued to {done.recipient} as mail #{done.mail_id} (mail "
               f"#{done.previous_mail_id} forgotten); its new link works until {done.expires_at.date().isoformat()}; "
               "`vault mail send-pending` sends it")
