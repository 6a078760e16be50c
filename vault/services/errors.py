"""Errors that services raise for input problems (refusals by policy are `policy.Denied`)."""

from __future__ import annotations


class ServiceError(Exception):
    """Bad input or a state conflict, with a stable code and a message in plain words."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(ServiceError):
    status = 404

    def __init__(self, what: str = "item") -> None:
        super().__init__("not_found", f"No such {what}, or you may not see it.")


class Conflict(ServiceError):
    status = 409
