"""The command group and the helpers every command shares (runtime, unit of work, errors)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from crypto import KeyringError

from .. import policy
from ..config import ConfigError, ensure_secret_key, load_settings
from ..runtime import Runtime
from ..services.errors import ServiceError


@click.group(help="Keep customer files in the company's hands.")
@click.version_option(package_name="vault")
def cli() -> None:
    pass


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
