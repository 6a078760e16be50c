"""Codes in words: a role, a status, a severity or a channel is stored as a code (machines match on it)
and shown to a person in their language. `label(code, kind)` is the template filter; a code no table
knows is shown as it is, so a new value is never hidden.

The same English word can be two different words in Russian or Chinese ("active" of a person, of a
customer, of an alert filter), so every entry carries its kind as the translation context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from flask_babel import LazyString, get_translations, gettext, pgettext

from vault.core import alert_wording, languages

_Table = dict[str, Callable[[], str]]

# The English of each entry is what the English pages always showed, so English readers see no change.
LABELS: dict[str, _Table] = {
    "role": {
        "admin": lambda: pgettext("role", "admin"),
        "approver": lambda: pgettext("role", "approver"),
        "auditor": lambda: pgettext("role", "auditor"),
        "borrower": lambda: pgettext("role", "borrower"),
        "compiler": lambda: pgettext("role", "compiler"),
        "custodian": lambda: pgettext("role", "custodian"),
    },
    "person": {
        "active": lambda: pgettext("person status", "active"),
        "departing": lambda: pgettext("person status", "on notice"),
        "departed": lambda: pgettext("person status", "departed"),
    },
    "business": {
        "prospect": lambda: pgettext("customer status", "prospect"),
        "active": lambda: pgettext("customer status", "active"),
        "dormant": lambda: pgettext("customer status", "dormant"),
        "closed": lambda: pgettext("customer status", "closed"),
    },
    "channel": {
        "visit": lambda: pgettext("contact channel", "visit"),
        "call": lambda: pgettext("contact channel", "call"),
        "meeting": lambda: pgettext("contact channel", "meeting"),
        "video": lambda: pgettext("contact channel", "video call"),
        "email": lambda: pgettext("contact channel", "e-mail"),
    },
    "term": {
        "payment": lambda: pgettext("customer terms", "Payment"),
        "discount": lambda: pgettext("customer terms", "Discount"),
        "credit_limit": lambda: pgettext("customer terms", "Credit limit"),
        "price_list": lambda: pgettext("customer terms", "Price list"),
        "renewal_date": lambda: pgettext("customer terms", "Renewal date"),
    },
    "alert": {
        "active": lambda: pgettext("alert state", "active"),
        "open": lambda: pgettext("alert state", "open"),
        "acknowledged": lambda: pgettext("alert state", "acknowledged"),
        "resolved": lambda: pgettext("alert state", "resolved"),
        "all": lambda: pgettext("alert state", "all"),
    },
    "severity": {
        "high": lambda: pgettext("severity", "high"),
        "medium": lambda: pgettext("severity", "medium"),
        "low": lambda: pgettext("severity", "low"),
    },
    # The customer record's fields and a contact's, by the labels the record's page gives them.
    "field": {
        "legal_name": lambda: gettext("Legal name"),
        "address": lambda: gettext("Address"),
        "city": lambda: gettext("City"),
        "industry": lambda: gettext("Industry"),
        "size": lambda: gettext("Size"),
        "status": lambda: gettext("Business status"),
        "contacts": lambda: gettext("Contacts"),
        "terms": lambda: gettext("Terms"),
        "notes": lambda: gettext("Relationship notes"),
        "name": lambda: gettext("Name"),
        "role": lambda: gettext("Role"),
        "phones": lambda: gettext("Phones"),
        "emails": lambda: gettext("E-mails"),
        "messaging": lambda: gettext("Messaging"),
        "birthday": lambda: gettext("Birthday"),
        "preferences": lambda: gettext("Preferences"),
        "language": lambda: gettext("Language"),
        "main": lambda: gettext("Main contact"),
    },
    # A customer contact's language (the one their letters are written in): its own name, as the account
    # page's choice shows it, so the code never reaches the page.
    "language": {code: (lambda name=name: name) for code, name in languages.NATIVE_NAMES.items()},
    # The audit log's action groups (the part of an action code before the colon) in words; the codes
    # themselves stay as recorded.
    "audit group": {
        "access": lambda: pgettext("audit group", "access"),
        "account": lambda: pgettext("audit group", "account"),
        "agreement": lambda: pgettext("audit group", "agreement"),
        "alert": lambda: pgettext("audit group", "alert"),
        "audit": lambda: pgettext("audit group", "audit"),
        "auth": lambda: pgettext("audit group", "auth"),
        "backup": lambda: pgettext("audit group", "backup"),
        "command": lambda: pgettext("audit group", "command"),
        "content": lambda: pgettext("audit group", "content"),
        "customer": lambda: pgettext("audit group", "customer"),
        "departure": lambda: pgettext("audit group", "departure"),
        "document": lambda: pgettext("audit group", "document"),
        "handover": lambda: pgettext("audit group", "handover"),
        "key": lambda: pgettext("audit group", "key"),
        "letter": lambda: pgettext("audit group", "letter"),
        "loan": lambda: pgettext("audit group", "loan"),
        "mail": lambda: pgettext("audit group", "mail"),
        "manager": lambda: pgettext("audit group", "manager"),
        "pool": lambda: pgettext("audit group", "shared pool"),
        "public": lambda: pgettext("audit group", "public"),
        "quota": lambda: pgettext("audit group", "quota"),
        "role": lambda: pgettext("audit group", "role"),
        "rotation": lambda: pgettext("audit group", "rotation"),
        "route": lambda: pgettext("audit group", "route"),
        "storage": lambda: pgettext("audit group", "storage"),
        "token": lambda: pgettext("audit group", "token"),
        "totp": lambda: pgettext("audit group", "totp"),
        "user": lambda: pgettext("audit group", "user"),
        "view": lambda: pgettext("audit group", "view"),
    },
    "outcome": {
        "allowed": lambda: pgettext("audit outcome", "allowed"),
        "denied": lambda: pgettext("audit outcome", "denied"),
        "failed": lambda: pgettext("audit outcome", "failed"),
    },
}


def label(code: object, kind: str) -> str:
    """`code` in the reader's language, or the code itself when the table of `kind` does not know it."""
    text = str(code) if code is not None else ""
    words = LABELS[kind].get(text)
    return words() if words is not None else text


def labels(codes: Iterable[object] | None, kind: str, ordered: bool = True) -> str:
    """Several codes in words, joined by commas: sorted as the reader reads them (a person's roles), or
    in their own order when `ordered` is False (a record's fields, in the order of the form)."""
    words = [label(code, kind) for code in codes or ()]
    return ", ".join(sorted(words) if ordered else words)


def lazy(code: str, kind: str) -> LazyString:
    """`label` put off until shown: for the choices of a form defined once, read in many languages."""
    return LazyString(label, code, kind)


_STEP = re.compile(r"^([^\[\]]+)(?:\[(\d+)\])?$")


def field_path(path: str) -> str:
    """A changed field of the customer record in words: "contacts[0].emails[1]" is "Contacts 1 · E-mails 2",
    "terms.credit_limit" is "Terms · Credit limit"; a messaging service keeps its own name."""
    words = []
    parent = ""
    for step in str(path).split("."):
        found = _STEP.match(step)
        if not found:
            return str(path)
        name, index = found.groups()
        text = label(name, "term" if parent == "terms" else "field") if parent != "messaging" else name
        words.append(f"{text} {int(index) + 1}" if index is not None else text)
        parent = name
    return " · ".join(words)


def alert_summary(alert: object) -> str:
    """An alert's summary in the reader's language (its stored English for an alert raised without
    the summary's values). The template filter `alert_summary`."""
    return alert_wording.sentence(str(getattr(alert, "summary", "") or ""), getattr(alert, "params", None),
                                  get_translations())
