"""Errors that services raise for input problems (refusals by policy are `policy.Denied`)."""

from __future__ import annotations


class Refusal(Exception):
    """Base of the policy's refusal (`vault.policy.Denied`), known here so a unit of work can tell a
    refusal that must keep the work before it (`keep_work`) from any other failure."""

    keep_work: bool = False


class ServiceError(Exception):
    """Bad input or a state conflict, with a stable code and a message in plain words."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(ServiceError):
    """No such object, or one the actor may not see: the same answer, so ids cannot be probed. The web
    pipeline turns it into an audited `not_found` refusal (pages and API alike), with `audit`'s targets."""

    status = 404

    def __init__(self, what: str = "item", **audit: int | None) -> None:
        super().__init__("not_found", f"No such {what}, or you may not see it.")
        self.audit = audit


class Conflict(ServiceError):
    status = 409
