"""The command group and the helpers every command shares (runtime, unit of work, errors)."""

from __future__ import annotations

import sys
import unicodedata
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
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext, operator_name_var
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
    """A transaction that turns domain errors into clean command-line errors.

    A refusal is recorded, as the web records one: the command's work is rolled back and the refusal
    appended in a transaction of its own, under the operator's name, so an operator trying what the
    policy refuses leaves a trace too.
    """
    try:
        with rt.db.session() as session:
            yield session
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    except policy.Denied as exc:
        message = f"refused: {exc.decision.message} ({exc.decision.code})"
        try:
            record_refusal(rt, exc)
        except Exception as failure:  # the refusal stands; say that its record is missing
            message += f"; the refusal could not be recorded: {failure}"
        raise click.ClickException(message) from None


def record_refusal(rt: Runtime, exc: policy.Denied) -> None:
    """Append the refusal of the running command (the action refused, else `command:refused`)."""
    with rt.db.session() as session:
        rt.audit.record(session, action=exc.action or AuditAction.COMMAND_REFUSED, actor=None,
                        ctx=AccessContext.cli(), outcome="denied", reason_code=exc.decision.code,
                        detail={"command": command_named()}, **exc.audit)


def command_named() -> str:
    """The running command as typed, "vault departure complete" (the program's own name however invoked)."""
    names: list[str] = []
    context = click.get_current_context(silent=True)
    while context is not None and context.parent is not None:
        names.append(context.info_name or "")
        context = context.parent
    return " ".join(["vault", *reversed(names)])


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def fail(message: str, code: int = 1) -> None:
    echo_err(message)
    sys.exit(code)


def column(text: str, width: int) -> str:
    """`text` padded with spaces to `width` columns of a terminal, for the tables commands print.

    Python's format padding counts characters, but a terminal shows a Chinese character two columns wide
    and a combining accent on the letter before it, so a table with 王伟 among Latin names came out
    ragged. Text already wider than `width` is left whole, as format padding leaves it."""
    shown = sum(0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
                for char in text)
    return text + " " * max(0, width - shown)
