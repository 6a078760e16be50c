"""`vault maintenance run` (the due work of loans, reservations and departures, for cron) and
`vault policy show` (the policy in force)."""

from __future__ import annotations

import click

from vault.cli.common import cli, open_runtime, settings, unit_of_work
from vault.config.policy_file import to_toml
from vault.core.context import AccessContext
from vault.services import letters, maintenance


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
               + _letters_forgotten(report, rt.settings.letter_keep_days)
               + (f"; signed audit checkpoint {checkpoint.seq}" if checkpoint else ""))


def _letters_forgotten(report: maintenance.MaintenanceReport, keep_days: int) -> str:
    """What the sweep forgot of letters, said as what it is: letters that can never go (answered, revoked, their
    customer moved on) apart from letters a re-issue could have sent until their link expired more than
    `VAULT_LETTER_KEEP_DAYS` ago, each with a count per reason code (as `letter:forget` records them)."""
    lasting = [(code, n) for code, n in report.letters_forgotten_by_reason if code != letters.KEPT_EXPIRED]
    expired = sum(n for code, n in report.letters_forgotten_by_reason if code == letters.KEPT_EXPIRED)
    parts = []
    if lasting:
        parts.append(f"{sum(n for _code, n in lasting)} letter(s) that can never go ("
                     + ", ".join(f"{code} {n}" for code, n in lasting) + ")")
    if expired:
        parts.append(f"{expired} letter(s) whose link expired more than {keep_days} day(s) ago "
                     f"({letters.KEPT_EXPIRED} {expired})")
    return "; forgot the address and text of " + " and of ".join(parts) if parts else ""



@cli.group("policy")
def policy_group() -> None:
    """The policy file in force."""


@policy_group.command("show")
def policy_show() -> None:
    """Print the policy in force (the file's settings over the defaults) as a policy file."""
    click.echo(to_toml(settings().policy_sections()), nl=False)
