"""`vault departure ...` (one person's notice, its changes, the handover of single customers, report,
withdrawal and completion) and `vault departures run`.

The command line acts as the system (the audit log names the operator): it records what HR decides. The
successor's confirmation of a contact and an approver's waiver are a person's word in their own name,
given on the pages or through the API, never here.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import click
from sqlalchemy.orm import Session

from vault.alerts import webhook
from vault.cli.common import cli, column, open_runtime, unit_of_work
from vault.core.context import AccessContext
from vault.core.errors import NotFound
from vault.core.private_files import write_private
from vault.models import Departure, HandoverItem
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


def _departure(session: Session, username: str) -> Departure:
    departure = service.departure_of(session, accounts.get_user(session, username))
    if departure is None:
        raise NotFound("departure")
    return departure


def _handover_item(departure: Departure, customer: str) -> HandoverItem:
    """The departure's item for CUSTOMER, given by id or by exact name."""
    text = customer.strip()
    found = [item for item in departure.items
             if (text.isascii() and text.isdigit() and item.customer_id == int(text)) or item.customer.name == text]
    if len(found) != 1:
        raise click.ClickException(f"no customer {customer!r} in the handover of {departure.user.username} "
                                   "(give its id or exact name; `vault departure show` lists them)")
    return found[0]


@cli.group("departure")
def departure_group() -> None:
    """One person's departure: notice, changes, handover, report, withdrawal, completion.

    Contact confirmations and waivers are given by the successor and an approver in their own names
    (pages or API), not from the command line."""


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
        ended = user.past_last_day
        if ended:  # a notice recorded late: access has already ended, the last-day steps run in this transaction
            service.run_due(rt, session, ctx=AccessContext.cli())
    click.echo(f"{username} is on notice; last working day {last_day.date().isoformat()}, access ends "
               f"{ends.isoformat() if ends else '?'}")
    click.echo(f"customers handed over: {items} ({key} key) to {successor or 'the reassignment list'}")
    if ended:
        click.echo(f"{username}: access ended; loans and tokens revoked, sessions ended, account disabled")
    _flush_webhooks()


@departure_group.command("update")
@click.argument("username")
@click.option("--last-day", type=DATE, default=None,
              help="New last working day, YYYY-MM-DD (a day already past ends access and runs the last-day steps).")
@click.option("--successor", default=None, help="A (new) successor: receives every customer not yet confirmed.")
@click.option("--note", default=None, help="Replaces the departure's note (\"\" clears it).")
def update(username: str, last_day: datetime | None, successor: str | None, note: str | None) -> None:
    """Move USERNAME's last day, name a new successor or change the note (as the system; audited)."""
    if last_day is None and successor is None and note is None:
        raise click.UsageError("give at least one of --last-day, --successor, --note")
    rt = open_runtime()
    with unit_of_work(rt) as session:
        departure = _departure(session, username)
        heir = accounts.get_user(session, successor) if successor else None
        service.update_departure(rt, session, None, departure, last_day=_day(last_day), successor=heir, note=note,
                                 ctx=AccessContext.cli())
        user = departure.user
        ended = user.past_last_day and departure.offboarded_at is None
        if ended:  # access has just ended: the last-day steps run in the same transaction
            service.run_due(rt, session, ctx=AccessContext.cli())
        day = user.last_day.isoformat() if user.last_day else "-"
        heir_name = departure.successor.username if departure.successor else "nobody"
    click.echo(f"{username}: last working day {day}, successor {heir_name}")
    if ended:
        click.echo(f"{username}: access ended; loans and tokens revoked, sessions ended, account disabled")
    _flush_webhooks()


@departure_group.command("reassign")
@click.argument("username")
@click.argument("customer")
@click.option("--to", "to", default=None, metavar="USER", help="The account manager who receives the customer.")
@click.option("--pool", is_flag=True, help="Return the customer to the shared pool (no owner until claimed).")
def reassign(username: str, customer: str, to: str | None, pool: bool) -> None:
    """Hand CUSTOMER (id or exact name) of USERNAME's handover to another account manager, or to the shared
    pool (as the system; audited)."""
    if bool(to) == pool:
        raise click.UsageError("give exactly one of --to USER and --pool")
    rt = open_runtime()
    with unit_of_work(rt) as session:
        departure = _departure(session, username)
        item = _handover_item(departure, customer)
        if pool:
            service.return_to_pool(rt, session, None, item, ctx=AccessContext.cli())
        else:
            service.reassign(rt, session, None, item, accounts.get_user(session, to or ""), ctx=AccessContext.cli())
        name = item.customer.name
    click.echo(f"{name}: {'back in the shared pool' if pool else f'now with {to}'}")
    _flush_webhooks()


@departure_group.command("show")
@click.argument("username")
def show(username: str) -> None:
    """The state of USERNAME's departure and handover (its customers by name: recorded, as the page is)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        departure = service.read_departure(rt, session, None, _departure(session, username), shown="cli",
                                           ctx=AccessContext.cli())
        user = departure.user
        click.echo(f"{user.username}: {user.status}, notice {departure.notice_date.isoformat()}, last day "
                   f"{user.last_day.isoformat() if user.last_day else '-'}, departure {departure.status}, "
                   f"last-day steps {'done' if departure.offboarded_at else 'pending'}")
        for item in departure.items:
            to = item.to_user.username if item.to_user else "-"
            click.echo(f"  {column(item.customer.name, 40)} {'key' if item.key else '':4} {column(to, 20)} "
                       f"{item.state.replace('_', ' ')}")


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


@departure_group.command("withdraw")
@click.argument("username")
@click.option("--reason", required=True, help="Why the notice is withdrawn (recorded; at least 10 characters).")
def withdraw(username: str, reason: str) -> None:
    """Withdraw USERNAME's notice (they stay): normal policy again, customers given back (as the system;
    audited). Refused once the last-day steps have run, and for a completed departure."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        departure = _departure(session, username)
        service.withdraw(rt, session, None, departure, reason=reason, ctx=AccessContext.cli())
    click.echo(f"{username}'s notice is withdrawn: active again, and the customers not yet moved on are theirs again")
    _flush_webhooks()


@departure_group.command("complete")
@click.argument("username")
def complete(username: str) -> None:
    """Complete USERNAME's departure (every key customer confirmed or waived)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        departure = _departure(session, username)
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
            click.echo(f"{column(d.user.username, 20)} {d.status:10} notice {d.notice_date.isoformat()} last day "
                       f"{d.user.last_day.isoformat() if d.user.last_day else '-'} handover {settled}/{len(d.items)}")
