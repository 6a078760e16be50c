"""People, customers and documents by the names people use, for filtering the log.

An auditor thinks "what did Eva Kowalski do with Dupont's price list", not "user 9, document 41".
The log keeps ids (names change; the record must not), so the desk turns a name into the one id it
means before filtering, and says so plainly when a name means nobody or several.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.audit.filters import AuditFilter, FilterError, parse
from vault.models import Customer, Document, User
from vault.models.customers import name_key

# Suggestions offered in the filter form's lists (a datalist): enough for a company's staff and its
# customers, few enough that the page stays small; beyond them any name may still be typed.
MAX_SUGGESTIONS = 400
# How many of the people or things sharing a name an error message lists.
SHOWN_MATCHES = 5


@dataclass(frozen=True)
class Suggestions:
    """The names the filter form suggests: (value to type, hint shown beside it)."""

    people: list[tuple[str, str]]
    customers: list[str]
    documents: list[tuple[str, str]]


# What the desk says when a name means nobody, or several (whole sentences per kind, so that each
# language words them its own way; put into words in the request's language by FilterError).
_NOBODY = {
    "user": _l("there is no user %(text)s"),
    "customer": _l("there is no customer %(text)s"),
    "document": _l("there is no document %(text)s"),
}
_SEVERAL = {
    "user": _l("%(text)s names several users: %(names)s; give the id or a fuller name"),
    "customer": _l("%(text)s names several customers: %(names)s; give the id or a fuller name"),
    "document": _l("%(text)s names several documents: %(names)s; give the id or a fuller name"),
}


def _one(field: str, text: str, found: list[tuple[int, str]]) -> int:
    if not found:
        raise FilterError(field, str(_NOBODY[field]) % {"text": repr(text)})
    if len(found) > 1:
        names = ", ".join(f"{label} (#{ident})" for ident, label in found[:SHOWN_MATCHES])
        raise FilterError(field, str(_SEVERAL[field]) % {"text": repr(text), "names": names})
    return found[0][0]


class NameResolver:
    """Looks names up in one session; each method returns the one id meant, or raises FilterError."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def user(self, text: str) -> int | None:
        """A login name exactly, else a display name ignoring case ("eva kowalski" finds Eva Kowalski)."""
        exact = self.session.scalar(select(User.id).where(User.username == text))
        if exact is not None:
            return exact
        found = [(row[0], f"{row[1]} / {row[2]}") for row in self.session.execute(
            select(User.id, User.display_name, User.username)
            .where(func.lower(User.display_name) == func.lower(text)).order_by(User.id).limit(SHOWN_MATCHES + 1))]
        return _one("user", text, found)

    def customer(self, text: str) -> int:
        """A customer's name, ignoring accents, case and spacing (as the customer search does)."""
        found = [(row[0], row[1]) for row in self.session.execute(
            select(Customer.id, Customer.name).where(Customer.name_key == name_key(text))
            .order_by(Customer.id).limit(SHOWN_MATCHES + 1))]
        return _one("customer", text, found)

    def document(self, text: str, customer_id: int | None = None) -> int:
        """A document's title ignoring case, within the customer if one is chosen (titles repeat across
        customers: every customer has a "Price list")."""
        query = select(Document.id, Document.title, Customer.name).join(Customer, Customer.id == Document.customer_id)
        query = query.where(func.lower(Document.title) == func.lower(text))
        if customer_id is not None:
            query = query.where(Document.customer_id == customer_id)
        found = [(row[0], f"{row[1]} — {row[2]}") for row in self.session.execute(
            query.order_by(Document.id).limit(SHOWN_MATCHES + 1))]
        return _one("document", text, found)


def parse_named(session: Session, args: Mapping[str, str | None]) -> AuditFilter:
    """The filter the parameters describe, people, customers and documents given by id or by name: the
    one reading of filters shared by the desk, the API and the command line.

    Raises:
        FilterError: a value is malformed, or a name means nobody or several; `field` says which.
    """
    names = NameResolver(session)
    given = {key: value for key, value in args.items() if value is not None}
    return parse(given, names.user, resolve_customer=names.customer, resolve_document=names.document)


def suggestions(session: Session) -> Suggestions:
    """Names for the filter form's datalists: people by display name (login beside), customers, titles."""
    people = [(row[0], row[1]) for row in session.execute(
        select(User.display_name, User.username).order_by(User.display_name).limit(MAX_SUGGESTIONS))]
    customers = list(session.scalars(select(Customer.name).order_by(Customer.name).limit(MAX_SUGGESTIONS)))
    documents = [(row[0], row[1]) for row in session.execute(
        select(Document.title, Customer.name).join(Customer, Customer.id == Document.customer_id)
        .order_by(Document.title, Customer.name).limit(MAX_SUGGESTIONS))]
    return Suggestions(people, customers, documents)



def _slug(text: str, limit: int = 40) -> str:
    """ASCII words joined by hyphens, for a file name every system accepts ("Ibérica S.A." → "iberica-s-a")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join(re.findall(r"[a-z0-9]+", plain))[:limit].strip("-") or "x"


def export_file_name(session: Session, filters: AuditFilter, fmt: str, event_seq: int, at: datetime) -> str:
    """A download's name that says what and when: whose, which customer or document, the period,
    the export time and its record number, e.g.
    ``audit_eva-kowalski_dupont-industries_2026-03-01_to_2026-03-31_exported-20260331T1405Z_n812.csv``."""
    parts = ["audit"]
    if filters.user_id is not None:
        user = session.get(User, filters.user_id)
        parts.append(_slug(user.display_name) if user else f"user-{filters.user_id}")
    if filters.actor is not None:
        parts.append("by-" + _slug(filters.actor))
    if filters.customer_id is not None:
        customer = session.get(Customer, filters.customer_id)
        parts.append(_slug(customer.name) if customer else f"customer-{filters.customer_id}")
    if filters.document_id is not None:
        document = session.get(Document, filters.document_id)
        parts.append(_slug(document.title) if document else f"document-{filters.document_id}")
    if filters.loan_id is not None:
        parts.append(f"loan-{filters.loan_id}")
    if filters.action is not None:
        parts.append(_slug(filters.action.replace("*", "all")))
    if filters.outcome is not None:
        parts.append(filters.outcome)
    if filters.since is not None or filters.until is not None:
        since = filters.since.date().isoformat() if filters.since else "start"
        until = (filters.until - timedelta(microseconds=1)).date().isoformat() if filters.until else "now"
        parts.append(f"{since}_to_{until}")
    if len(parts) == 1:
        parts.append("all")
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    return "_".join([*parts, f"exported-{stamp}", f"n{event_seq}"]) + f".{fmt}"
