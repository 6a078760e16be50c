"""The `vault` command line: the same services as the pages, run by an operator on the server."""

from __future__ import annotations

import importlib

import click

from vault.cli.common import cli

COMMAND_MODULES: tuple[str, ...] = (
    "vault.cli.audit",
    "vault.cli.loans",
    "vault.cli.setup",
    "vault.cli.users",
    "vault.cli.documents",
    "vault.cli.demo",
    "vault.cli.departures",
    "vault.cli.rotation",
    "vault.cli.maintenance",
    "vault.cli.mail",
    "vault.cli.letters",
    "vault.cli.trace",
    "vault.cli.backup",
    "vault.cli.customers",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name)


def main() -> None:
    cli(prog_name="vault")


__all__ = ["cli", "click", "main"]
