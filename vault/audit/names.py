"""People, customers and documents by the names people use, for filtering the log.

An auditor thinks "what did Eva Kowalski do with Dupont's price list", not "user 9, document 41".
The log keeps ids (names change; the record must not), so the desk turns a name into the one id it
means before filtering, and says so plainly when a name means nobody or several.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.audit.filters import FilterError
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


def _one(field: str, text: str, found: list[tuple[int, str]], what: str) -> int:
    if not found:
        raise FilterError(field, f"there is no {what} {text!r}")
    if len(found) > 1:
        names = ", ".join(f"{label} (#{ident})" for ident, label in found[:SHOWN_MATCHES])
        raise FilterError(field, f"{text!r} names several {what}s: {names}; give the id or a fuller name")
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
            .where(func.lower(User.display_name) == text.lower()).order_by(User.id).limit(SHOWN_MATCHES + 1))]
        return _one("user", text, found, "user")

    def customer(self, text: str) -> int:
        """A customer's name, ignoring accents, case and spacing (as the customer search does)."""
        found = [(row[0], row[1]) for row in self.session.execute(
            select(Customer.id, Customer.name).where(Customer.name_key == name_key(text))
            .order_by(Customer.id).limit(SHOWN_MATCHES + 1))]
        return _one("customer", text, found, "customer")

    def document(self, text: str, customer_id: int | None = None) -> int:
        """A document's title ignoring case, within the customer if one is chosen (titles repeat across
        customers: every customer has a "Price list")."""
        query = select(Document.id, Document.title, Customer.name).join(Customer, Customer.id == Document.customer_id)
        query = query.where(func.lower(Document.title) == text.lower())
        if customer_id is not None:
            query = query.where(Document.customer_id == customer_id)
        found = [(row[0], f"{row[1]} — {row[2]}") for row in self.session.execute(
            query.order_by(Document.id).limit(SHOWN_MATCHES + 1))]
        return _one("document", text, found, "document")


def suggestions(session: Session) -> Suggestions:
    """Names for the filter form's datalists: people by display name (login beside), customers, titles."""
    people = [(row[0], row[1]) for row in session.execute(
        select(User.display_name, User.username).order_by(User.display_name).limit(MAX_SUGGESTIONS))]
    customers = list(session.scalars(select(Customer.name).order_by(Customer.name).limit(MAX_SUGGESTIONS)))
    documents = [(row[0], row[1]) for row in session.execute(
        select(Document.title, Customer.name).join(Customer, Customer.id == Document.customer_id)
        .order_by(Document.title, Customer.name).limit(MAX_SUGGESTIONS))]
    return Suggestions(people, customers, documents)

