"""Errors that services raise for input problems (refusals by policy are `policy.Denied`)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

# What `NotFound(what)` names, in words each language can decline (Russian and Chinese cannot splice
# a noun into one shared sentence): one whole sentence per kind of object.
NOT_FOUND_MESSAGES: dict[str, object] = {
    "item": _l("No such item, or you may not see it."),
    "customer": _l("No such customer, or you may not see it."),
    "document": _l("No such document, or you may not see it."),
    "loan": _l("No such loan, or you may not see it."),
    "user": _l("No such user, or you may not see it."),
    "person": _l("No such person, or you may not see them."),
    "view": _l("No such view, or you may not see it."),
    "alert": _l("No such alert, or you may not see it."),
    "departure": _l("No such departure, or you may not see it."),
    "token": _l("No such token, or you may not see it."),
    "view page": _l("No such page, or you may not see it."),
    "content link": _l("No such link, or it has expired."),
    "handover item": _l("No such handover item, or you may not see it."),
    "password link": _l("No such link, or it has expired."),
    "role request": _l("No such role request, or you may not see it."),
}


class Refusal(Exception):
    """Base of the policy's refusal (`vault.policy.Denied`), known here so a unit of work can tell a
    refusal that must keep the work before it (`keep_work`) from any other failure."""

    keep_work: bool = False


class ServiceError(Exception):
    """Bad input or a state conflict, with a stable code and a message in plain words.

    The message may be a lazy translation (`lazy_gettext`): it is put into words when read, in the
    language of the request (or mail) that shows it, and in English where there is none (the CLI)."""

    status = 400

    def __init__(self, code: str, message: object) -> None:
        super().__init__(message)
        self.code = code
        self._message = message

    @property
    def message(self) -> str:
        return str(self._message)

    def __str__(self) -> str:
        return self.message


class NotFound(ServiceError):
    """No such object, or one the actor may not see: the same answer, so ids cannot be probed. The web
    pipeline turns it into an audited `not_found` refusal (pages and API alike), with `audit`'s targets."""

    status = 404

    def __init__(self, what: str = "item", **audit: int | None) -> None:
        super().__init__("not_found", NOT_FOUND_MESSAGES.get(what, NOT_FOUND_MESSAGES["item"]))
        self.audit = audit


class Conflict(ServiceError):
    status = 409
