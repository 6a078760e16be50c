"""`vault init` and `vault run`."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from crypto import Keyring
from vault import create_app
from vault.cli.common import cli, settings
from vault.config.settings import Settings
from vault.db import schema
from vault.runtime import Runtime, make_store
from vault.services import legacy_notes


def initialise(conf: Settings) -> Keyring:
    """Create what is missing (data folder, keyring, schema, bucket); safe to run any number of times."""
    conf.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(conf.data_dir, 0o700)
    path = Path(conf.keyring_path)
    if path.exists():
        keyring = Keyring.load(path)
        click.echo(f"keyring: {path} (active key {keyring.active_key_id})")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        keyring = Keyring.create(path)
        click.echo(f"keyring: created {path} (mode 0600, active key {keyring.active_key_id})")
    rt = Runtime.build(conf, keyring)
    try:
        before = schema.current_revision(rt.db)
        # Revision 0014 seals the customers' old clear notes into their records: only here is the keyring.
        # Revision 0023 tallies the recent views by the working-hours timezone's days.
        schema.upgrade(rt.db, seal_notes=legacy_notes.sealer(rt), zone=rt.settings.working_hours.zone.key)
        after = schema.current_revision(rt.db)
        click.echo(f"database: {_safe_url(conf.database)} at revision {after}"
                   + ("" if before == after else f" (was {before or 'empty'})"))
    finally:
        rt.close()
    store = make_store(conf)
    store.ensure_ready()
    click.echo(f"storage: {store.describe()} ready")
    return keyring


def _safe_url(url: str) -> str:
    """The database address as printed: never its password."""
    return make_url(url).render_as_string(hide_password=True)


@cli.command("init")
def init_command() -> None:
    """Create the data folder, keyring, database schema and bucket (idempotent)."""
    initialise(settings())


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine: 127.0.0.0/8, ::1 or the name localhost.

    Any other name is refused rather than resolved: what it resolves to can change, and a name that
    points at a public address today would put the debugger on it.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug/--no-debug", default=False)
def run_command(host: str, port: int, debug: bool) -> None:
    """Serve the application with the development server (use gunicorn in production)."""
    # Flask's interactive debugger runs any code typed into an error page: on an address others reach it
    # is a shell on the server for whoever opens it. Refused before anything starts.
    if debug and not is_loopback(host):
        raise click.UsageError(f"--debug runs any code typed into an error page, so it serves only a loopback "
                               f"host (127.0.0.0/8, ::1, localhost), not {host!r}")
    app = create_app()
    app.run(host=host, port=port, debug=debug, use_reloader=False, threaded=True)
