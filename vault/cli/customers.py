"""`vault customer owner CUSTOMER USER`: an operator moves a customer to another account manager.

For people changing teams, when nobody in the chain of managers is at hand to do it on the customer page:
the command acts as the system (the audit log names the operator) through the same service as the page and
the API, so the move is recorded as `customer:owner` with its reason and the customer's contacts may get
their letter about the new account manager, exactly as when a manager does it.
"""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from vault.cli.common import cli, open_runtime, unit_of_work
from vault.core.context import AccessContext
from vault.models import Customer
from vault.services import accounts
from vault.services import customers as service

MAX_ID = 2**31 - 1  # ids are 32-bit columns; a larger number is no customer, not a database error


def find_customer(session: Session, text: str) -> Customer:
    """CUSTOMER given by id or by exact name (as the pages spell it; case and accents count)."""
    wanted = text.strip()
    found: Customer | None = None
    if wanted.isascii() and wanted.isdigit() and int(wanted) <= MAX_ID:
        found = session.get(Customer, int(wanted))
    if found is None:
        by_name = service.find_by_name(session, wanted)
        found = by_name if by_name is not None and by_name.name == service.clean_name(wanted) else None
    if found is None:
        raise click.ClickException(f"no customer {text!r} (give its id or exact name)")
    return found


def _is_text(value: str) -> bool:
    """Whether an argument can be stored and compared as text: bytes that are not UTF-8 reach Python as
    unpaired surrogates, which no database accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@cli.group("customer")
def customer_group() -> None:
    """One customer, as an operator on the server handles it (as the system; audited)."""


@customer_group.command("owner")
@click.argument("customer")
@click.argument("username")
@click.option("--reason", default="", help="Why the customer moves (kept in the audit record).")
def owner(customer: str, username: str, reason: str) -> None:
    """Give CUSTOMER (id or exact name) to USERNAME, an active account manager (as the system; audited
    `customer:owner`). The previous owner stays in the customer's history; nothing changes when USERNAME
    already owns it."""
    if len(reason) > 2000:
        raise click.BadParameter("at most 2000 characters", param_hint="--reason")
    for value, hint in ((customer, "CUSTOMER"), (username, "USERNAME"), (reason, "--reason")):
        if not _is_text(value):
            raise click.BadParameter("must be text in UTF-8 (the shell passed bytes in another encoding)",
                                     param_hint=hint)
    rt = open_runtime()
    with unit_of_work(rt) as session:
        found = find_customer(session, customer)
        new_owner = accounts.get_user(session, username)
        previous = found.owner.username if found.owner is not None else None
        if found.owner_id == new_owner.id:
            click.echo(f"{found.name}: already with {username}; nothing changed")
            return
        service.set_owner(rt, session, None, found, new_owner, reason=reason, ctx=AccessContext.cli())
        name = found.name
    click.echo(f"{name}: now with {username} (was {previous or 'in the shared pool, no owner'})")
