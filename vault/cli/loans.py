"""`vault loans expire`: the sweep that ends loans past due and gives back views never delivered.

Both also happen whenever the person touches the loan or opens a view; the sweep makes sure they
happen for people who never come back, so overdue loans and stale reservations do not linger.
"""

from __future__ import annotations

import click

from vault.cli.common import cli, open_runtime, unit_of_work
from vault.services import loans


@cli.group("loans")
def loans_group() -> None:
    """Loans of documents."""


@loans_group.command("expire")
def loans_expire() -> None:
    """Expire loans past their due time and refund views whose content URL expired unused."""
    rt = open_runtime()
    try:
        with unit_of_work(rt) as session:
            result = loans.sweep(rt, session)
    finally:
        rt.close()
    click.echo(f"expired {result.loans_expired} loan(s); refunded {result.views_refunded} unused view(s)")
