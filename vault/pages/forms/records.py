"""Forms of the customer record: reveal (reason and place), edit, and a contact-log entry.

Contacts and terms are typed one per line in the edit form, so a record can be written without a script:
`Name | role | phones | e-mails | messaging | birthday | preferences` (lists comma-separated, messaging as
`service:id`), and `name: value` for terms. An empty box leaves that group as it is.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel import pgettext
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from vault.pages.forms.documents import choice
from vault.pages.forms.text import SafeForm
from vault.services.records import CHANNELS, SIZES, STATUSES
from vault.web import labels


class RevealForm(SafeForm):
    # Whether the reason and place say anything is the policy's to judge (`policy.records`), as for a view,
    # so an empty or filler reason gets the same code and refusal record here as through the API.
    reason = TextAreaField(_l("Why you need the contacts and terms"), validators=[Length(max=500)])
    place = StringField(_l("Where you are"), validators=[Length(max=100)])


class RecordForm(SafeForm):
    legal_name = StringField(_l("Legal name"), validators=[Length(max=200)])
    address = StringField(_l("Address"), validators=[Length(max=300)])
    city = StringField(_l("City"), validators=[Length(max=100)])
    industry = StringField(_l("Industry"), validators=[Length(max=100)])
    size = SelectField(_l("Size (employees)"), choices=[choice("", "—"), *[choice(s, s) for s in SIZES]],
                       validators=[Optional()])
    status = SelectField(_l("Business status"),
                         choices=[choice("", "—"), *[choice(s, labels.lazy(s, "business")) for s in STATUSES]],
                         validators=[Optional()])
    contacts = TextAreaField(_l("Contacts (one per line: name | role | phones | e-mails | service:id | "
                                "birthday | preferences | language of letters (en, zh_Hans, ru) | \"main\" for "
                                "a main contact); empty keeps them"), validators=[Length(max=20000)])
    terms = TextAreaField(_l("Terms (one per line: name: value); empty keeps them"),
                          validators=[Length(max=5000)])
    notes = TextAreaField(_l("Relationship notes; empty keeps them"), validators=[Length(max=4000)])


class LogForm(SafeForm):
    happened_on = DateField(_l("Date"), validators=[DataRequired()])
    channel = SelectField(_l("Channel"), choices=[choice(c, labels.lazy(c, "channel")) for c in CHANNELS])
    contact = StringField(_l("Person reached"), validators=[DataRequired(), Length(max=100)])
    topic = TextAreaField(_l("Topic"), validators=[DataRequired(), Length(max=500)])
    result = TextAreaField(_l("Result"), validators=[Optional(), Length(max=2000)])
    next_step = StringField(_l("Next step"), validators=[Optional(), Length(max=500)])
    verification = BooleanField(_l("A manager's verification visit"))


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_contacts(text: str) -> list[dict[str, Any]]:
    """The edit form's contact lines as contacts (the service checks each value)."""
    contacts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split("|")] + [""] * 9
        messaging = {}
        for item in _items(cells[4]):
            service, _, handle = item.partition(":")
            messaging[service.strip()] = handle.strip()
        contact: dict[str, Any] = {"name": cells[0], "role": cells[1], "phones": _items(cells[2]),
                                   "emails": _items(cells[3]), "messaging": messaging, "birthday": cells[5],
                                   "preferences": cells[6]}
        if cells[7]:
            contact["language"] = cells[7]
        if cells[8]:
            # Any word marks a main contact ("main", "yes", "主要", "основной"): the cell is there or not.
            contact["main"] = True
        contacts.append(contact)
    return contacts


def format_contacts(contacts: list[dict[str, Any]]) -> str:
    """The reverse of `parse_contacts`, to prefill the form after a reveal."""
    return "\n".join(" | ".join(_contact_cells(c)) for c in contacts)


def _contact_cells(c: dict[str, Any]) -> list[str]:
    cells = [c.get("name", ""), c.get("role", ""), ", ".join(c.get("phones", [])), ", ".join(c.get("emails", [])),
             ", ".join(f"{k}:{v}" for k, v in c.get("messaging", {}).items()), c.get("birthday", ""),
             c.get("preferences", "").replace("\n", " ")]
    if c.get("language") or c.get("main"):
        # The main-contact cell in the reader's words (any word there marks it, see `parse_contacts`).
        cells += [c.get("language", ""), pgettext("contact cell", "main") if c.get("main") else ""]
    return cells


def parse_terms(text: str) -> dict[str, str]:
    terms = {}
    for line in text.splitlines():
        if line.strip():
            name, _, value = line.partition(":")
            terms[name.strip()] = value.strip()
    return terms


def format_terms(terms: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in terms.items())
