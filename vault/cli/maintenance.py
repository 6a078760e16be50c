"""`vault maintenance run` (the due work of loans, reservations and departures, for cron) and
`vault policy show` (the policy in force)."""

from __future__ import annotations

import click

from vault.cli.common import cli, open_runtime, settings, unit_of_work
from vault.config.policy_file import to_toml
from vault.core.context import AccessContext
from vault.services import maintenance


@cli.group("maintenance")
def maintenance_group() -> None:
    """Work that falls due with time (run it from cron every few minutes)."""


@maintenance_group.command("run")
def run() -> None:
    """Expire loans past due, refund unused views, carry out due last-day steps, forget withheld or failed
    letters that can never go, sign an idle audit log."""
    rt = open_runtime()
    try:
        with unit_of_work(rt) as session:
            report = maintenance.run(rt, session, ctx=AccessContext.cli())
        checkpoint = maintenance.run_due_checkpoint(rt)
    finally:
        rt.close()
    click.echo(f"expired {report.loans_expired} loan(s); refunded {report.views_refunded} unused view(s); "
               f"last-day steps for {len(report.departures_offboarded)} departure(s)"
               + (f"; settled {report.deliveries_lost} lost delivery(ies) as partial" if report.deliveries_lost else "")
               + (f"; {report.claims_lapsed} pool claim(s) lapsed" if report.claims_lapsed else "")
               + (f"; forgot the address and text of {report.letters_forgotten} letter(s) "
                  "that can never go"
                  if report.letters_forgotten else "")
               + (f"; signed audit checkpoint {checkpoint.seq}" if checkpoint else ""))



@cli.group("policy")
def policy_group() -> None:
    """The policy file in force."""


@policy_group.command("show")
def policy_show() -> None:
    """Print the policy in force (the file's settings over the defaults) as a policy file."""
    click.echo(to_toml(settings().policy_sections()), nl=False)
