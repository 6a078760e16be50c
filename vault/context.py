"""Who is asking from where: the facts recorded with every act, gathered once per request."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class AccessContext:
    client_addr: str | None = None
    named_place: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    declared_place: str | None = None

    @classmethod
    def cli(cls) -> AccessContext:
        return cls(client_addr="cli", named_place="command line", user_agent="vault-cli")

    def declaring(self, place: str | None) -> AccessContext:
        return replace(self, declared_place=place or None)
