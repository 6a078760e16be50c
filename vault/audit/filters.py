"""What part of the log to show or export: one filter type shared by the desk, the API and the CLI."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, or_

from vault.models import AuditEvent

OUTCOMES = ("allowed", "denied", "failed")
# The parameters a filter is given by, in the desk's form, the API's query strings and the command line.
FILTER_KEYS = ("since", "until", "user", "actor", "customer", "document", "loan", "action", "outcome", "place")
# Ids of people, customers, documents and loans are 32-bit columns on every backend: a larger number
# matches nothing, and must not reach the database (PostgreSQL refuses it as out of range).
MAX_ID = 2**31 - 1
# The longest value a filter takes (names, titles, places are stored at most this long). A longer one is
# refused, never cut: a cut value is a filter the auditor did not type, with results for it.
MAX_VALUE = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FilterError(ValueError):
    """A filter value that cannot be understood; `field` names the offending parameter."""

    def __init__(self, field: str, message: object) -> None:
        super().__init__(str(message))
        self.field = field
        self.message = str(message)  # a lazy text is put into words in the request's language


@dataclass(frozen=True)
class AuditFilter:
    """Every field narrows the selection; `until` is exclusive (a date means the whole day)."""

    since: datetime | None = None
    until: datetime | None = None
    user_id: int | None = None  # the person acted or was acted upon
    actor: str | None = None  # who acted: an id, or a name as recorded (unknown login names too)
    customer_id: int | None = None
    document_id: int | None = None
    loan_id: int | None = None
    action: str | None = None  # exact, or a prefix ending in "*" ("loan:*")
    outcome: str | None = None
    place: str | None = None  # named place or declared place

    @property
    def is_empty(self) -> bool:
        return all(value is None for value in asdict(self).values())

    def conditions(self) -> list[ColumnElement[bool]]:
        e = AuditEvent
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(e.ts >= self.since)
        if self.until is not None:
            out.append(e.ts < self.until)
        if self.user_id is not None:
            out.append(or_(e.actor_id == self.user_id, e.subject_user_id == self.user_id))
        if self.actor is not None:
            out.append(e.actor_id == int(self.actor) if _is_id(self.actor) else e.actor_name == self.actor)
        if self.customer_id is not None:
            out.append(e.customer_id == self.customer_id)
        if self.document_id is not None:
            out.append(e.document_id == self.document_id)
        if self.loan_id is not None:
            out.append(e.loan_id == self.loan_id)
        if self.action is not None:
            if self.action.endswith("*"):
                prefix = self.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                out.append(e.action.like(prefix + "%", escape="\\"))
            else:
                out.append(e.action == self.action)
        if self.outcome is not None:
            out.append(e.outcome == self.outcome)
        if self.place is not None:
            out.append(or_(e.named_place == self.place, e.declared_place == self.place))
        return out

    def describe(self) -> dict[str, Any]:
        """The filters as JSON values, for manifests and audit records."""
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if value is not None:
                out[name] = value.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(
                    value, datetime) else value
        return out


# The years a filter may name. Far inside the calendar's ends (year 1 and 9999), so that the day
# arithmetic of filters and charts (a day added, a microsecond taken off, a timezone shifted) never
# overflows into a server error.
FIRST_YEAR, LAST_YEAR = 1970, 9000


def parse_time(text: str, *, end: bool = False) -> datetime:
    """ISO date or date-time; naive means UTC. With `end`, a bare date means "up to the end of that day"."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            _check_year(text, day.year)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(str(_l("%(text)s is not a date (2026-01-31) or a date-time (2026-01-31T14:00:00Z)",
                                text=repr(text)))) from None
    _check_year(text, moment.year)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment + timedelta(microseconds=1) if end else moment


def _check_year(text: str, year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(str(_l("%(text)s is out of range: give a date from %(first)s to %(last)s",
                                text=repr(text), first=FIRST_YEAR, last=LAST_YEAR)))


def _is_id(text: str) -> bool:
    """ASCII digits within the id range ("²" and "١٢٣" are digits to `str.isdigit`, not to `int`)."""
    return text.isascii() and text.isdigit() and int(text) <= MAX_ID


def _looks_numeric(text: str) -> bool:
    """An id typed as such ("41", "#41"); anything else is a name to look up."""
    stripped = text.lstrip("#").strip()
    return stripped.isascii() and stripped.isdigit()


def _int(name: str, text: str) -> int:
    text = text.strip().removeprefix("#")
    if not _is_id(text.strip()):
        raise FilterError(name, _l("%(name)s must be a whole number from 0 to %(MAX_ID)s, not %(text)s",
                                   name=name, MAX_ID=MAX_ID, text=repr(text)))
    return int(text)


def parse(args: Mapping[str, str], resolve_user: Callable[[str], int | None] | None = None, *,
          resolve_customer: Callable[[str], int] | None = None,
          resolve_document: Callable[[str, int | None], int] | None = None) -> AuditFilter:
    """Build a filter from request or command-line parameters; blank values are ignored.

    `user` may be an id or a name (looked up with `resolve_user`); an unknown name is an error,
    while `actor` matches recorded names too, so refused logins with invented names can be found.
    `customer` and `document` may be ids or, given their resolvers, names (a document's title is
    looked up within the chosen customer); the resolvers raise FilterError for a name that means
    nothing or several things.

    Raises:
        FilterError: a value is malformed; `field` says which.
    """
    values = {key: str(value).strip() for key, value in args.items() if value is not None and str(value).strip()}
    for key, value in values.items():
        # No recorded name, place or action holds one, and PostgreSQL refuses NUL in a query.
        if _CONTROL.search(value):
            raise FilterError(key, _l("%(key)s must not contain control characters", key=key))
        if len(value) > MAX_VALUE:
            raise FilterError(key, _l("%(key)s is at most %(limit)s characters", key=key, limit=MAX_VALUE))
    fields: dict[str, Any] = {}
    for name in ("since", "until"):
        if name in values:
            try:
                fields[name] = parse_time(values[name], end=name == "until")
            except ValueError as exc:
                raise FilterError(name, str(exc)) from None
    if "since" in fields and "until" in fields and fields["since"] >= fields["until"]:
        raise FilterError("until", _l("the end of the period must come after its start"))
    if "user" in values:
        text = values["user"]
        if text.isascii() and text.isdigit():
            user_id = int(text) if _is_id(text) else None
        else:
            user_id = resolve_user(text) if resolve_user else None
        if user_id is None:
            raise FilterError("user", _l("there is no user %(text)s", text=repr(text)))
        fields["user_id"] = user_id
    if "actor" in values:
        if values["actor"].isascii() and values["actor"].isdigit() and not _is_id(values["actor"]):
            raise FilterError("actor", _l("actor ids go up to %(MAX_ID)s", MAX_ID=MAX_ID))
        fields["actor"] = values["actor"]
    for name, field in (("customer", "customer_id"), ("document", "document_id"), ("loan", "loan_id")):
        if name not in values:
            continue
        text = values[name]
        if name == "customer" and resolve_customer is not None and not _looks_numeric(text):
            fields[field] = resolve_customer(text)
        elif name == "document" and resolve_document is not None and not _looks_numeric(text):
            fields[field] = resolve_document(text, fields.get("customer_id"))
        else:
            fields[field] = _int(name, text)
    if "action" in values:
        action = values["action"]
        if len(action) > 64 or not all(ch.isalnum() or ch in ":_-.*" for ch in action) or "*" in action[:-1]:
            raise FilterError("action", _l("%(action)s is not an action name (like loan:approve or loan:*)",
                                           action=repr(action)))
        fields["action"] = action
    if "outcome" in values:
        if values["outcome"] not in OUTCOMES:
            raise FilterError("outcome", _l("outcome must be one of %(value)s", value=", ".join(OUTCOMES)))
        fields["outcome"] = values["outcome"]
    if "place" in values:
        fields["place"] = values["place"]
    return AuditFilter(**fields)
