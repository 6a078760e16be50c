"""`vault demo`: a ready-to-try vault with a demo company, served on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from vault import create_app
from vault.cli.common import cli, settings
from vault.cli.setup import initialise
from vault.runtime import Runtime
from vault.services import demo


@cli.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Set up the demo company and exit without serving.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder for the demo (default: VAULT_DATA_DIR, else ./vault-data).")
def demo_command(host: str, port: int, no_serve: bool, data_dir: Path | None) -> None:
    """Create a demo company (people in every role, 30 customers, 60 encrypted files) and serve it.

    Safe to run again: nothing is duplicated, and what is missing is added.
    """
    conf = settings({"data_dir": data_dir} if data_dir is not None else None)
    keyring = initialise(conf)
    rt = Runtime.build(conf, keyring=keyring)
    try:
        demo.seed(rt, echo=click.echo)
        click.echo("")
        click.echo(f"Sign in with any of these (password for all: {demo.DEMO_PASSWORD}):")
        for user in demo.USERS:
            roles = ", ".join(str(role) for role in user.roles)
            click.echo(f"  {user.username:8} {user.display_name:16} {roles}")
        if no_serve:
            return
        app = create_app(runtime=rt)
        click.echo(f"\nServing on http://{host}:{port}/ (Ctrl+C to stop)")
        app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
    finally:
        rt.close()
