"""`vault mail send-pending|status|test|retry` and `vault user email`: the outbox for cron and operators."""

from __future__ import annotations

import click

from vault.cli.common import cli, command_named, echo_err, open_runtime, unit_of_work
from vault.cli.users import user_group
from vault.config.addresses import masked
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.mail import Kind, enqueue, send_digests, send_pending, transport_for
from vault.mail.accounts import EmailChange, set_email
from vault.mail.repair import Refused, record_refused, retry
from vault.mail.sender import DEFAULT_BATCH, SendResult
from vault.mail.status import outbox_status
from vault.models import utcnow
from vault.runtime import Runtime
from vault.services import accounts

# One cron run sends at most this many batches, so a huge backlog cannot keep it running for hours.
MAX_BATCHES = 20


@cli.group("mail")
def mail_group() -> None:
    """E-mail notifications: the outbox and its sending."""


@mail_group.command("send-pending")
@click.option("--batch", type=click.IntRange(1, 1000), default=DEFAULT_BATCH, show_default=True)
def mail_send_pending(batch: int) -> None:
    """Bundle finished days into digests, then send due mail (for cron, e.g. every minute)."""
    rt = open_runtime()
    try:
        digests = send_digests(rt.db, utcnow())
        transport = transport_for(rt.settings)
        if transport is None:
            click.echo(f"queued {digests} digest(s); sending is off (VAULT_SMTP_URL is empty), mail stays queued")
            return
        total = SendResult()
        for _ in range(MAX_BATCHES):
            result = send_pending(rt.db, transport, utcnow(), batch)
            total.sent += result.sent
            total.retrying += result.retrying
            total.failed += result.failed
            total.released += result.released
            total.withheld += result.withheld
            if result.claimed < batch or result.released:
                break
    finally:
        rt.close()
    click.echo(f"queued {digests} digest(s); sent {total.sent}, will retry {total.retrying}, "
               f"failed {total.failed}, withheld {total.withheld}")


@mail_group.command("status")
def mail_status() -> None:
    """Mail by status, the age of the oldest unsent mail, and the latest errors."""
    rt = open_runtime()
    try:
        with unit_of_work(rt) as session:
            status = outbox_status(session, utcnow())
    finally:
        rt.close()
    click.echo("sending: " + ("on" if rt.settings.smtp_url else "off (VAULT_SMTP_URL is empty)"))
    for name, count in status.counts.items():
        click.echo(f"{name:10} {count}")
    if status.oldest_waiting is not None:
        click.echo(f"oldest unsent: {int(status.oldest_waiting.total_seconds() // 60)} minute(s) old")
    for row_id, recipient, state, error, code in status.last_errors:
        # A withheld mail's "error" is why it was not sent (a letter that no longer holds), not a server's reply;
        # a letter's reason code comes last, in brackets, for scripts (the sentence may be reworded).
        if state == "withheld":
            click.echo(f"withheld #{row_id} {recipient}: {error}" + (f" [{code}]" if code else ""))
        else:
            click.echo(f"error #{row_id} {recipient} ({state}): {error}")


@mail_group.command("test")
@click.argument("address")
def mail_test(address: str) -> None:
    """Send a test message to ADDRESS now, through the configured server."""
    rt = open_runtime()
    try:
        transport = transport_for(rt.settings)
        if transport is None:
            raise click.ClickException("sending is off: set VAULT_SMTP_URL and VAULT_MAIL_FROM")
        with unit_of_work(rt) as session:
            rows = enqueue(session, Kind.TEST, [address], "test", {})
            if not rows:
                raise click.ClickException(f"{address!r} is not an e-mail address")
            row_id = rows[0].id
        result = send_pending(rt.db, transport, utcnow(), 1, ids=[row_id])
        with unit_of_work(rt) as session:
            error = outbox_status(session, utcnow(), errors=1).last_errors
    finally:
        rt.close()
    if result.sent != 1:
        detail = error[0][3] if error and error[0][0] == row_id else "not sent"
        raise click.ClickException(f"test message #{row_id} not sent: {detail}")
    click.echo(f"test message #{row_id} sent to {address}")


@mail_group.command("retry")
@click.argument("ids", nargs=-1, type=click.IntRange(min=1), metavar="[ID]...")
@click.option("--all-failed", is_flag=True, help="Every mail that failed for good and can be sent again.")
def mail_retry(ids: tuple[int, ...], all_failed: bool) -> None:
    """Put mail that failed for good (ID as `vault mail status` shows it) back in the queue, as the operator
    (audited `mail:retry`); `vault mail send-pending` sends it. Refused, one line each, for mail that was sent,
    is still waiting, was withheld (a letter: `vault letter reissue`), does not exist or whose text is
    forgotten (a password link: make a new link), for a person's mail whose address has changed since, and
    for a customer letter whose link expired (`vault letter reissue`) or that no longer holds."""
    if bool(ids) == all_failed:
        raise click.UsageError("name the mail to retry (ID...) or give --all-failed, not both")
    rt = open_runtime()
    try:
        with unit_of_work(rt) as session:
            result = retry(rt, session, None if all_failed else list(ids), ctx=AccessContext.cli(), now=utcnow())
        unrecorded = _record_refused(rt, result.refused, all_failed=all_failed)
    finally:
        rt.close()
    for done in result.retried:
        error = f": {done.last_error}" if done.last_error else ""
        click.echo(f"queued #{done.id} {done.kind} {done.recipient} (failed after {done.attempts} "
                   f"{'attempt' if done.attempts == 1 else 'attempts'}{error})")
    # With --all-failed the mail that cannot be sent again is named but expected (a password link's stays failed
    # for ever); a mail named by its id and refused is an error the operator must see in the exit status.
    verb = "skipped" if all_failed else "refused"
    for refused in result.refused:
        echo_err(f"{verb} #{refused.id}: {refused.why}")
    count = len(result.retried)
    click.echo(f"{count} {'mail' if count == 1 else 'mails'} back in the queue"
               + ("; `vault mail send-pending` sends them" if count else ""))
    if unrecorded:
        echo_err(f"the refusals could not be recorded: {unrecorded}")
    if (result.refused and not all_failed) or unrecorded:
        raise SystemExit(1)


def _record_refused(rt: Runtime, refusals: list[Refused], *, all_failed: bool) -> str | None:
    """Record the refusals in a unit of their own, after the retries that were allowed committed; returns why
    that failed, if it did (the retries stand, and the operator must know the refusals left no trace)."""
    if not refusals:
        return None
    try:
        with rt.db.session() as session:
            record_refused(rt, session, AuditAction.MAIL_RETRY, refusals, ctx=AccessContext.cli(),
                           command=command_named(), all_failed=all_failed)
    except Exception as failure:  # the refusals stand; say that their record is missing
        return str(failure)
    return None


@user_group.command("email")
@click.argument("username")
@click.argument("address")
def user_email(username: str, address: str) -> None:
    """Set a person's e-mail address (an empty ADDRESS removes it)."""
    rt = open_runtime()
    try:
        with unit_of_work(rt) as session:
            user = accounts.get_user(session, username)
            change = set_email(rt, session, user, address, actor=None, ctx=AccessContext.cli())
    finally:
        rt.close()
    click.echo(f"{username}: {change.address or 'no e-mail address'}")
    click.echo(_notice_line(change))


def _notice_line(change: EmailChange) -> str:
    """Whether the previous address was told: the operator must know when a redirected address went unseen
    by the old mailbox (mail not configured), to tell the person some other way. Masked, as a sent mail is."""
    if change.notice is None:
        return "address unchanged; nobody was told"
    if change.notice == "no_previous_address":
        return "no previous address to tell"
    previous = masked(change.previous or "")
    if change.notice == "queued":
        return f"the previous address {previous} is told of the change (notice queued)"
    return f"the previous address {previous} was NOT told: mail is not configured"
