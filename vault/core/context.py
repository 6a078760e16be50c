"""Who is asking from where: the facts recorded with every act, gathered once per request."""

from __future__ import annotations

import getpass
import os
from contextvars import ContextVar
from dataclasses import dataclass, replace

# The operator named by `vault --operator NAME` for the command being run (None: the OS user).
operator_name_var: ContextVar[str | None] = ContextVar("vault_operator", default=None)


def operator_name() -> str:
    """Who runs a command on the server, as the audit log names them: `--operator NAME` when given, else
    the OS user (the command line acts as no vault account, but never anonymously)."""
    named = operator_name_var.get()
    if named:
        return f"cli:{named}"
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


@dataclass(frozen=True)
class AccessContext:
    client_addr: str | None = None
    named_place: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    declared_place: str | None = None
    operator: str | None = None  # the command line's operator, recorded as the actor's name

    @classmethod
    def cli(cls) -> AccessContext:
        return cls(client_addr="cli", named_place="command line", user_agent="vault-cli", operator=operator_name())

    @classmethod
    def system(cls, what: str) -> AccessContext:
        """Work the product does by itself (a maintenance sweep on a request), named for what it is."""
        return cls(named_place="system", user_agent=what)

    def declaring(self, place: str | None) -> AccessContext:
        return replace(self, declared_place=place or None)
