"""Forms of the customer record: reveal (reason and place), edit, and a contact-log entry.

The edit form carries the contacts and terms as groups of fields, one group per contact and one row per
term, so each value has its own labelled input and a refusal stands beside the value it is about, and the
relationship notes in one box. They are shown only to a person who has revealed them (or when there are none
to hide); a form that did not show them says so with its `*_edited` marker left empty, and saving it keeps
them as they are, whatever is sent under their names. A form that showed them replaces them with what comes
back: rows marked for removal and rows left blank are dropped, so every row marked for removal empties the
list on purpose, and an emptied notes box removes the notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FormField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from vault.core import languages
from vault.pages.forms.documents import choice
from vault.pages.forms.text import SafeForm
from vault.services.records import CHANNELS, SIZES, STATUSES, InvalidRecord, clean_messaging
from vault.web import labels

# Blank groups offered for new entries; the "Add another" buttons (static/js/rows.js) add more.
BLANK_CONTACTS = 2
BLANK_TERMS = 3
# What the `*_edited` marker holds when the form showed that group's rows.
EDITED = "1"
# The text inputs of a contact: a group with none of them typed is a blank group, left out.
CONTACT_TEXT = ("name", "role", "phones", "emails", "messaging", "birthday", "preferences")


class RevealForm(SafeForm):
    # Whether the reason and place say anything is the policy's to judge (`policy.records`), as for a view,
    # so an empty or filler reason gets the same code and refusal record here as through the API.
    reason = TextAreaField(_l("Why you need the contacts and terms"), validators=[Length(max=500)])
    place = StringField(_l("Where you are"), validators=[Length(max=100)])


class _Row(SafeForm):
    """A group of fields inside the edit form: the edit form's token covers it, so it has none itself."""

    class Meta:
        csrf = False


class ContactRow(_Row):
    name = StringField(_l("Full name"))
    role = StringField(_l("Role"))
    phones = StringField(_l("Phones"))
    emails = StringField(_l("E-mails"))
    messaging = StringField(_l("Messaging"))
    birthday = StringField(_l("Birthday"))
    preferences = TextAreaField(_l("Preferences"))
    language = SelectField(_l("Language of letters"), default="",
                           choices=[choice("", _l("The company's default")),
                                    *[choice(code, labels.lazy(code, "language")) for code in languages.LANGUAGES]])
    main = BooleanField(_l("Main contact"))
    remove = BooleanField(_l("Remove this contact"))


class TermRow(_Row):
    name = StringField(_l("Term"))
    value = StringField(_l("Value"))
    remove = BooleanField(_l("Remove this term"))


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
    contacts = FieldList(FormField(ContactRow))
    contacts_edited = HiddenField()
    terms = FieldList(FormField(TermRow))
    terms_edited = HiddenField()
    notes = TextAreaField(_l("Relationship notes"), validators=[Length(max=4000)])
    notes_edited = HiddenField()
    # The version of the record the form was filled from: a save over someone else's since is refused.
    version = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Rows sent by a form that did not show them are no edit of their group: left unread and unchecked.
        if self.contacts_edited.data != EDITED:
            self.contacts.entries = []
        if self.terms_edited.data != EDITED:
            self.terms.entries = []
        if self.notes_edited.data != EDITED:
            self.notes.data = ""
        # Refusals about a whole group (too many contacts), shown at the head of that group.
        self.group_errors: dict[str, list[str]] = {"contacts": [], "terms": []}

    def validate(self, extra_validators: Any = None) -> bool:
        """The form's own checks, and those the service cannot make because a name is a key: a term needs a
        name, and one term, or one messaging service of a contact, named twice would keep only the last value
        (the messaging check is the service's own, `records.clean_messaging`, given the pairs as typed)."""
        valid = super().validate(extra_validators)
        for entry in self.contacts:
            row = entry.form
            if _dropped_contact(row):
                continue
            try:
                clean_messaging(_messaging_pairs(row.messaging.data), "messaging")
            except InvalidRecord as problem:
                if not row.messaging.errors:
                    row.messaging.errors = [_l("%(field)s: %(why)s", field=row.messaging.label.text,
                                               why=problem.why)]
                valid = False
        seen: set[str] = set()
        for row in self.terms:
            if _dropped_term(row.form):
                continue
            name = (row.form.name.data or "").strip()
            if not name:
                row.form.name.errors = [*row.form.name.errors, _l("A term needs a name.")]
                valid = False
            elif name in seen:
                row.form.name.errors = [*row.form.name.errors, _l("This term is already given above.")]
                valid = False
            seen.add(name)
        return valid

    def show_contacts(self, contacts: list[dict[str, Any]]) -> None:
        """Fill the contact groups from `contacts` (as revealed), with blank groups for new ones."""
        self.contacts_edited.data = EDITED
        for contact in contacts:
            self.contacts.append_entry(_contact_fields(contact))
        for _ in range(BLANK_CONTACTS):
            self.contacts.append_entry()

    def show_terms(self, terms: dict[str, Any]) -> None:
        """Fill the term rows from `terms` (as revealed), with blank rows for new ones."""
        self.terms_edited.data = EDITED
        for name, value in terms.items():
            self.terms.append_entry({"name": name, "value": str(value)})
        for _ in range(BLANK_TERMS):
            self.terms.append_entry()

    def show_notes(self, notes: str) -> None:
        """Fill the notes' box from `notes` (as revealed): what is sent back replaces them, empty included."""
        self.notes_edited.data = EDITED
        self.notes.data = notes


@dataclass(frozen=True)
class Kept:
    """One group or row the form sends to the service, with the form row it came from (for its errors)."""

    row: Any
    value: Any


class LogForm(SafeForm):
    happened_on = DateField(_l("Date"), validators=[DataRequired()])
    channel = SelectField(_l("Channel"), choices=[choice(c, labels.lazy(c, "channel")) for c in CHANNELS])
    contact = StringField(_l("Person reached"), validators=[DataRequired(), Length(max=100)])
    topic = TextAreaField(_l("Topic"), validators=[DataRequired(), Length(max=500)])
    result = TextAreaField(_l("Result"), validators=[Optional(), Length(max=2000)])
    next_step = StringField(_l("Next step"), validators=[Optional(), Length(max=500)])
    verification = BooleanField(_l("A manager's verification visit"))


def _items(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _contact_fields(contact: dict[str, Any]) -> dict[str, Any]:
    """A stored contact as the values of its group of fields (the reverse of `_contact`)."""
    return {"name": contact.get("name", ""), "role": contact.get("role", ""),
            "phones": ", ".join(contact.get("phones", [])), "emails": ", ".join(contact.get("emails", [])),
            "messaging": ", ".join(f"{k}:{v}" for k, v in contact.get("messaging", {}).items()),
            "birthday": contact.get("birthday", ""), "preferences": contact.get("preferences", ""),
            "language": contact.get("language", ""), "main": bool(contact.get("main"))}


def _messaging_pairs(text: str | None) -> list[tuple[str, str]]:
    """The "service:id" items of a contact's messaging field as typed, a service named twice included."""
    pairs = []
    for item in _items(text):
        service, _, handle = item.partition(":")
        pairs.append((service.strip(), handle.strip()))
    return pairs


def _contact(row: ContactRow) -> dict[str, Any]:
    """A group of fields as a contact for the service, which checks every value (a service named twice is
    refused by the form's own check first, since an object cannot carry it to the service)."""
    messaging = dict(_messaging_pairs(row.messaging.data))
    contact: dict[str, Any] = {"name": (row.name.data or "").strip(), "role": (row.role.data or "").strip(),
                               "phones": _items(row.phones.data), "emails": _items(row.emails.data),
                               "messaging": messaging, "birthday": (row.birthday.data or "").strip(),
                               "preferences": (row.preferences.data or "").strip()}
    if row.language.data:
        contact["language"] = row.language.data
    if row.main.data:
        contact["main"] = True
    return contact


def _dropped_contact(row: ContactRow) -> bool:
    return bool(row.remove.data) or not any((getattr(row, name).data or "").strip() for name in CONTACT_TEXT)


def _dropped_term(row: TermRow) -> bool:
    return bool(row.remove.data) or not ((row.name.data or "").strip() or (row.value.data or "").strip())


def submitted_contacts(form: RecordForm) -> list[Kept] | None:
    """The contacts the form sends, in order, or None when it did not show them (they are kept)."""
    if form.contacts_edited.data != EDITED:
        return None
    return [Kept(entry.form, _contact(entry.form)) for entry in form.contacts if not _dropped_contact(entry.form)]


def submitted_terms(form: RecordForm) -> list[Kept] | None:
    """The terms the form sends as (row, (name, value)), or None when it did not show them (kept)."""
    if form.terms_edited.data != EDITED:
        return None
    return [Kept(entry.form, ((entry.form.name.data or "").strip(), (entry.form.value.data or "").strip()))
            for entry in form.terms if not _dropped_term(entry.form)]


def submitted_notes(form: RecordForm) -> str | None:
    """The notes the form sends (empty removes them), or None when it did not show them (they are kept)."""
    if form.notes_edited.data != EDITED:
        return None
    return form.notes.data or ""
