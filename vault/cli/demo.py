"""`vault demo`: a ready-to-try vault with a demo company, served on this machine by gunicorn (the same
production server as a real deployment, not Flask's development server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from crypto import Keyring
from vault import create_app
from vault.cli.common import cli, column, settings
from vault.cli.setup import initialise
from vault.config.settings import Settings
from vault.runtime import Runtime
from vault.services import demo

# Two worker processes of four threads each: enough for a few people trying the demo at once, and a
# worker that is busy rendering a large file does not stall the others.
WORKERS = 2
THREADS = 4


_EVERY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - what a host means, not a binding


def served_at(host: str, port: int) -> str:
    """The address the demo is opened at, for the links its mail carries (`VAULT_BASE_URL` when not set):
    a customer letter's answer link or a password link must lead back to this server, not nowhere. A
    server listening on every address is opened from this computer."""
    if host in _EVERY_ADDRESS:
        host = "127.0.0.1" if "." in host or not host else "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class DemoServer(BaseApplication):
    """gunicorn with the demo's settings, embedded. Each worker builds its own runtime after the fork, so
    no database connection or file handle is shared between processes."""

    def __init__(self, conf: Settings, keyring: Keyring, host: str, port: int) -> None:
        self.conf = conf
        self.keyring = keyring
        self.options: dict[str, Any] = {
            "bind": f"{host}:{port}",
            "workers": WORKERS,
            "threads": THREADS,
            "worker_class": "gthread",
            "timeout": 120,  # an upload's rendition can take a while
            "accesslog": "-",
            "proc_name": "vault-demo",
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(runtime=Runtime.build(self.conf, keyring=self.keyring))


@cli.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Set up the demo company and exit without serving.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder for the demo (default: VAULT_DATA_DIR, else ./vault-data).")
def demo_command(host: str, port: int, no_serve: bool, data_dir: Path | None) -> None:
    """Create a demo company (people in every role, their customers and encrypted files, and work in
    progress on every desk: loans waiting for a decision and a release, an active loan, a person on
    notice, open alerts) and serve it.

    Safe to run again: nothing is duplicated, and what is missing is added. This computer (loopback) is
    a trusted place, so files of every grade open.
    """
    conf = demo.with_loopback_trusted(settings({"data_dir": data_dir} if data_dir is not None else None))
    if not conf.base_url:
        conf = dataclasses.replace(conf, base_url=served_at(host, port))
    keyring = initialise(conf)
    rt = Runtime.build(conf, keyring=keyring)
    try:
        demo.seed(rt, echo=click.echo)
        click.echo("")
        click.echo(f"Sign in with any of these (password for all: {demo.DEMO_PASSWORD}):")
        for user in demo.USERS:
            roles = ", ".join(str(role) for role in user.roles)
            click.echo(f"  {column(user.username, 8)} {column(user.display_name, 16)} {roles}")
        click.echo("Approvers, custodians, auditors and the administrator set up a second factor at their first "
                   "sign-in: scan the code shown with any authenticator app.")
        click.echo("")
        click.echo("Work waiting on each desk:")
        for who, what in demo.DESKS:
            click.echo(f"  {column(who, 16)} {what}")
        click.echo(f"Trusted places: {', '.join(place.name for place in conf.trusted_places)}")
    finally:
        rt.close()
    if no_serve:
        return
    click.echo(f"\nServing on http://{host}:{port}/ with gunicorn (Ctrl+C to stop)")
    DemoServer(conf, keyring, host, port).run()
