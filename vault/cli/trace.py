"""`vault trace FILE`: which view a leaked page image or stamped PDF came from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from vault.cli.common import cli, open_runtime
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.services import tracing


@cli.command("trace")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def trace_command(file: Path, as_json: bool) -> None:
    """Print the view FILE (PNG, JPEG, WebP or PDF) came from: person, time, place, reason, document,
    customer. Exits with status 1 when no mark is found, 2 when the file cannot be read."""
    rt = open_runtime()
    unreadable: ServiceError | None = None
    try:
        # The unit commits either way: a trace that could not read the file is recorded too.
        with rt.db.session() as session:
            try:
                traced = tracing.trace_file(rt, session, file.read_bytes(), actor=None, ctx=AccessContext.cli(),
                                            name=file.name)
            except ServiceError as exc:
                unreadable = exc
            else:
                info = traced.as_dict()
    finally:
        rt.close()
    if unreadable is not None:
        click.echo(unreadable.message, err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
    elif not info["found"]:
        click.echo("no mark found")
    else:
        click.echo(f"view      {info['view_id']} (found in the {info['method']}"
                   + (f", page {info['page']}" if info.get("page") else "") + ")")
        if "person" in info:
            click.echo(f"person    {info['person']['name']} ({info['person']['login']})")
            click.echo(f"time      {info['opened_at']}")
            click.echo(f"place     {info['place']} from {info['client_addr']}")
            click.echo(f"reason    {info['reason']}")
            click.echo(f"document  {info['document']['title']} (id {info['document']['id']}, "
                       f"grade {info['document']['grade']})")
            click.echo(f"customer  {info['customer']['name']} (id {info['customer']['id']})")
        else:
            click.echo("the view is not in this database")
    if not info["found"]:
        sys.exit(1)
