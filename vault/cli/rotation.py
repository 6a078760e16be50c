"""`vault rotation propose` (run the rotation plan, e.g. from a monthly timer) and `vault rotation list`."""

from __future__ import annotations

import click

from vault.cli.common import cli, open_runtime, unit_of_work
from vault.core.context import AccessContext
from vault.services import rotation as service


@cli.group("rotation")
def rotation_group() -> None:
    """Rotation of account managers: proposals for the managers to decide on the rotation page."""


@rotation_group.command("propose")
def propose() -> None:
    """Propose a new owner for every customer due under the policy's [rotation] section (idempotent)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        made = service.propose(rt, session, None, ctx=AccessContext.cli())
        lines = [f"{p.id}\t{p.customer.name}\t{p.from_user.username} -> {p.to_user.username}" for p in made]
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} new proposal(s)")


@rotation_group.command("list")
def list_open() -> None:
    """Every open proposal: id, customer, current and proposed owner (recorded as a listing of customers)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        lines = [f"{p.id}\t{p.customer.name}\t{p.segment}\t{p.from_user.username} -> {p.to_user.username}"
                 for p in service.open_proposals(rt, session, ctx=AccessContext.cli())]
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} open proposal(s)")
