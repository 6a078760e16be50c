"""`vault departure ...` (one person's notice, report and completion) and `vault departures run`."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import click

from vault.alerts import webhook
from vault.cli.common import cli, open_runtime, unit_of_work
from vault.core.context import AccessContext
from vault.core.errors import NotFound
from vault.core.private_files import write_private
from vault.services import accounts
from vault.services import departures as service
from vault.services import report as report_service

DATE = click.DateTime(formats=["%Y-%m-%d"])
# How long a command waits for alert webhooks still being sent before it exits.
WEBHOOK_WAIT_SECONDS = 30.0


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _flush_webhooks() -> None:
    if not webhook.SENDER.wait(WEBHOOK_WAIT_SECONDS):
        click.echo("warning: some alert webhooks were still being retried when the command ended", err=True)


@cli.group("departure")
def departure_group() -> None:
    """One person's departure: notice, handover, report, completion."""


@departure_group.command("start")
@click.argument("username")
@click.option("--last-day", required=True, type=DATE, help="Last working day, YYYY-MM-DD (access ends at midnight).")
@click.option("--successor", default=None, help="Who receives the customers (else: the reassignment list).")
@click.option("--notice-date", type=DATE, default=None, help="When notice was given (default: today).")
@click.option("--note", default="", help="Kept with the departure and in the audit log.")
def start(username: str, last_day: datetime, successor: str | None, notice_date: datetime | None, note: str) -> None:
    """Record that USERNAME gave notice."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        heir = accounts.get_user(session, successor) if successor else None
        departure = service.start_departure(rt, session, None, user, last_day=last_day.date(), successor=heir,
                                            notice_date=_day(notice_date), note=note, ctx=AccessContext.cli())
        items = len(departure.items)
        key = sum(1 for item in departure.items if item.key)
        ends = user.access_ends_at
    click.echo(f"{username} is on notice; last working day {last_day.date().isoformat()}, access ends "
               f"{ends.isoformat() if ends else '?'}")
    click.echo(f"customers handed over: {items} ({key} key) to {successor or 'the reassignment list'}")
    _flush_webhooks()


@departure_group.command("show")
@click.argument("username")
def show(username: str) -> None:
    """The state of USERNAME's departure and handover."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        departure = service.departure_of(session, user)
        if departure is None:
            raise NotFound("departure")
        click.echo(f"{user.username}: {user.status}, notice {departure.notice_date.isoformat()}, last day "
                   f"{user.last_day.isoformat() if user.last_day else '-'}, departure {departure.status}, "
                   f"last-day steps {'done' if departure.offboarded_at else 'pending'}")
        for item in departure.items:
            state = ("confirmed" if item.confirmed else "waived" if item.waived_at else
                     "unassigned" if item.to_user_id is None else "pending" if item.key else "handed over")
            to = item.to_user.username if item.to_user else "-"
            click.echo(f"  {item.customer.name:40} {'key' if item.key else '':4} {to:20} {state}")


@departure_group.command("report")
@click.argument("username")
@click.option("--format", "fmt", type=click.Choice(["csv", "pdf"]), required=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), required=True,
              help="File to write, or - for standard output.")
@click.option("--lookback-days", type=click.IntRange(1, 3660), default=None,
              help="Window in days (default: [departure] lookback_days, 180).")
def report(username: str, fmt: str, out: Path, lookback_days: int | None) -> None:
    """Write the departure report of USERNAME (audited)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        data = report_service.produce(rt, session, None, user, fmt=fmt, lookback_days=lookback_days,
                                      ctx=AccessContext.cli())
        content = report_service.csv_bytes(data) if fmt == "csv" else report_service.pdf_bytes(data)
        # Written before the commit: if the file cannot be written, the report was not produced.
        if str(out) == "-":
            sys.stdout.buffer.write(content)
            sys.stdout.buffer.flush()
        else:
            try:
                write_private(out, content)  # names customers and files: mode 0600
            except OSError as exc:
                raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    if str(out) != "-":
        click.echo(f"report of {username}: {len(data.customers)} customer(s), {len(data.documents)} document(s), "
                   f"{len(data.alerts)} alert(s) → {out} (audit record #{data.audit_seq})")


@departure_group.command("complete")
@click.argument("username")
def complete(username: str) -> None:
    """Complete USERNAME's departure (every key customer confirmed or waived)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        departure = service.departure_of(session, user)
        if departure is None:
            raise NotFound("departure")
        service.complete(rt, session, None, departure, ctx=AccessContext.cli())
    click.echo(f"{username} has departed")


@cli.group("departures")
def departures_group() -> None:
    """All departures."""


@departures_group.command("run")
def run() -> None:
    """Carry out the last-day steps of every departure whose last day has ended (run it from cron)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        done = service.run_due(rt, session, ctx=AccessContext.cli())
        names = [d.user.username for d in done]
    for name in names:
        click.echo(f"{name}: loans and tokens revoked, sessions ended, account disabled")
    click.echo(f"{len(names)} departure(s) processed")
    _flush_webhooks()


@departures_group.command("list")
def list_departures() -> None:
    """Every departure with its state."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        for d in service.list_departures(session):
            settled = sum(1 for i in d.items if i.settled)
            click.echo(f"{d.user.username:20} {d.status:10} notice {d.notice_date.isoformat()} last day "
                       f"{d.user.last_day.isoformat() if d.user.last_day else '-'} handover {settled}/{len(d.items)}")
