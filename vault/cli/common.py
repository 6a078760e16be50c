"""The command group and the helpers every command shares (runtime, unit of work, errors)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

import vault.alerts
import vault.mail  # noqa: F401  (registers the notification listeners)
from crypto import KeyringError
from vault import policy
from vault.config.settings import ConfigError, ensure_secret_key, load_settings
from vault.core.context import operator_name_var
from vault.core.errors import ServiceError
from vault.runtime import Runtime


@click.group(help="Keep customer files in the company's hands.")
@click.version_option(package_name="vault")
@click.option("--operator", metavar="NAME", default=None,
              help="Who is running this command, as the audit log records it (default: the OS user).")
def cli(operator: str | None) -> None:
    if operator is not None:
        operator = operator.strip()
        if not operator or len(operator) > 64 or not operator.isprintable():
            raise click.BadParameter("1 to 64 printable characters", param_hint="--operator")
        operator_name_var.set(operator)


def settings(overrides: dict[str, Any] | None = None):
    try:
        return ensure_secret_key(load_settings(overrides))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def open_runtime() -> Runtime:
    try:
        return Runtime.build(settings())
    except KeyringError as exc:
        raise click.ClickException(f"{exc} (run `vault init` first)") from None


@contextmanager
def unit_of_work(rt: Runtime) -> Iterator[Session]:
    """A transaction that turns domain errors into clean command-line errors."""
    try:
        with rt.db.session() as session:
            yield session
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    except policy.Denied as exc:
        raise click.ClickException(f"refused: {exc.decision.message} ({exc.decision.code})") from None


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def fail(message: str, code: int = 1) -> None:
    echo_err(message)
    sys.exit(code)
