"""The customer record: reading it masked, revealing it per need, editing it into versions, and its contact log.

Callers first open the customer through `vault.services.customers.read_customer` (visibility, the audited
read); the functions here take that customer. What leaves this module for a page or an API answer is
masked (`vault.services.masking`) unless it comes from `reveal`, which checks the reason and place,
spends one unit of the person's quota for the customer and of their daily cap (`reveal_quota`), records
the reveal in the audit log and counts it as a directory access for the early warning.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault import policy
from vault.core import events, languages
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.dates import parse_day
from vault.core.errors import Conflict, NotFound, ServiceError
from vault.db.locking import locked
from vault.models import (
    ContactLogEntry,
    Customer,
    CustomerAccess,
    CustomerRecord,
    CustomerRecordVersion,
    Departure,
    DepartureStatus,
    HandoverItem,
    User,
    utcnow,
)
from vault.policy.notice import on_notice
from vault.policy.records import contacts_known, reveal_input_problems
from vault.runtime import Runtime
from vault.services import key_use, masking, reveal_quota
from vault.services.record_crypto import key_context, new_record_key, open_sealed, record_key, seal

FACTS = ("legal_name", "address", "city", "industry", "size", "status")
GROUPS = ("contacts", "terms", "notes")
STATUSES = ("prospect", "active", "dormant", "closed")
SIZES = ("1-10", "11-50", "51-250", "251-1000", "1000+")
CHANNELS = ("visit", "call", "meeting", "video", "email")
# What the product itself writes to the log besides people's entries: a letter to the customer, the answer.
LETTER_CHANNEL = "letter"
LOG_CHANNELS = (*CHANNELS, LETTER_CHANNEL)
TERM_KEYS = ("payment", "discount", "credit_limit", "price_list", "renewal_date")
_FACT_LIMITS = {"legal_name": 200, "address": 300, "city": 100, "industry": 100}
MAX_CONTACTS = 20
MAX_PER_CONTACT = 5
MAX_TERMS = 20
MAX_NOTES = 4000
MAX_REASON = 500
MAX_PLACE = 100
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{2,38}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


# -- input ----------------------------------------------------------------------------------------------


class InvalidLog(ServiceError):
    """A contact-log entry refused (`invalid_log`), with the field it is about, so a form shows the
    refusal beside that field."""

    def __init__(self, field: str, message: object) -> None:
        super().__init__("invalid_log", message)
        self.field = field


class InvalidRecord(ServiceError):
    """A record's field refused (`invalid_record`). The message names the field as the API names it (a
    JSON path such as `contacts[0].phones`); `field` and `why` are kept apart too, so the edit form shows
    the reason beside the input it is about rather than a path the person never typed."""

    def __init__(self, field: str, why: object) -> None:
        super().__init__("invalid_record", _l("%(field)s: %(why)s", field=field, why=why))
        self.field = field
        self.why = why


def _bad(field_name: str, why: object) -> InvalidRecord:
    """The refusal of one field; `why` is translatable, so a page shows it in the reader's language."""
    return InvalidRecord(field_name, why)


def _text(value: Any, field_name: str, limit: int, *, lines: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(field_name, _l("must be text"))
    text = unicodedata.normalize("NFC", value).strip()
    if lines:
        # One line ending, whoever typed it: a browser sends a text box's lines with CRLF and a script with
        # LF, and the same notes in two spellings would make a new version on every save from the page.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    allowed = {"\n", "\t"} if lines else set()
    if any(unicodedata.category(ch) in {"Cc", "Cf"} and ch not in allowed for ch in text):
        raise _bad(field_name, _l("cannot contain control characters"))
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        # A JSON body can carry an unpaired surrogate; no database (nor the sealing) can store one.
        raise _bad(field_name, _l("must be valid Unicode text"))
    if len(text) > limit:
        raise _bad(field_name, _l("has at most %(n)s characters", n=limit))
    return text


def _list(value: Any, field_name: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(field_name, _l("must be a list"))
    if len(value) > limit:
        raise _bad(field_name, _l("has at most %(n)s entries", n=limit))
    return value


def clean_contact(raw: Any, where: str) -> dict[str, Any]:
    """One contact as stored: name (required), role, phones, emails, messaging {service: id}, birthday
    (YYYY-MM-DD), preferences; and, only when given, the language letters to them are written in
    (`language`, one of `languages.LANGUAGES` or a tag such as "zh-CN") and whether they are one of the
    customer's main contacts (`main`: the people a letter about a new account manager goes to).

    Raises:
        ServiceError: `invalid_record`, naming the field.
    """
    if not isinstance(raw, dict):
        raise _bad(where, _l("must be an object"))
    unknown = set(raw) - {"name", "role", "phones", "emails", "messaging", "birthday", "preferences", "language",
                          "main"}
    if unknown:
        raise _bad(where, _l("unknown fields: %(names)s", names=", ".join(sorted(map(str, unknown)))))
    name = _text(raw.get("name"), f"{where}.name", 100)
    if not name:
        raise _bad(f"{where}.name", _l("is required"))
    phones = [_text(p, f"{where}.phones", 40) for p in _list(raw.get("phones"), f"{where}.phones", MAX_PER_CONTACT)]
    for phone in phones:
        if not _PHONE.match(phone) or sum(ch.isdigit() for ch in phone) < 4:
            raise _bad(f"{where}.phones", _l("%(value)s is not a phone number", value=repr(phone)))
    emails = [_text(e, f"{where}.emails", 200) for e in _list(raw.get("emails"), f"{where}.emails", MAX_PER_CONTACT)]
    for email in emails:
        if not _EMAIL.match(email):
            raise _bad(f"{where}.emails", _l("is not an e-mail address"))
    # None (or absent) is none; any other value must be the object itself: 0, "" and [] were taken as {}.
    messaging_raw = {} if raw.get("messaging") is None else raw["messaging"]
    if not isinstance(messaging_raw, dict) or len(messaging_raw) > MAX_PER_CONTACT:
        raise _bad(f"{where}.messaging", _l("must be an object of at most %(n)s services", n=MAX_PER_CONTACT))
    messaging = clean_messaging(messaging_raw.items(), f"{where}.messaging")
    birthday = _text(raw.get("birthday"), f"{where}.birthday", 10)
    if birthday:
        try:
            parse_day(birthday)
        except ValueError:
            raise _bad(f"{where}.birthday", _l("must be a date (YYYY-MM-DD)")) from None
    contact: dict[str, Any] = {
        "name": name, "role": _text(raw.get("role"), f"{where}.role", 100), "phones": phones, "emails": emails,
        "messaging": messaging, "birthday": birthday,
        "preferences": _text(raw.get("preferences"), f"{where}.preferences", 500, lines=True)}
    tag = _text(raw.get("language"), f"{where}.language", 16)
    if tag:
        language = languages.from_tag(tag)
        if language is None:
            raise _bad(f"{where}.language", _l("must be one of %(choices)s", choices=", ".join(languages.LANGUAGES)))
        contact["language"] = language
    main = raw.get("main")
    if main is not None and not isinstance(main, bool):  # 1 == True in Python: a number is not a yes
        raise _bad(f"{where}.main", _l("must be true or false"))
    if main:
        contact["main"] = True
    return contact


def clean_messaging(pairs: Iterable[tuple[Any, Any]], where: str) -> dict[str, str]:
    """A contact's messaging ids as stored, {service: id}, from (service, id) pairs: the services of a JSON
    object, or the "service:id" items the page's field lists. A service is named in lower case, so one named
    twice, whatever its case ("telegram" and "Telegram" in an API body, or twice in the page's field), is
    refused: the object keeps one id a service, and the second would silently replace the first.

    Raises:
        ServiceError: `invalid_record`, naming `where` (the id's own path for a bad id).
    """
    messaging: dict[str, str] = {}
    for service, handle in pairs:
        key = _text(service, where, 32).lower()
        value = _text(handle, f"{where}.{key}", 100)
        if not key or not value:
            raise _bad(where, _l("needs a service name and an id"))
        if key in messaging:
            raise _bad(where, _l("names the service %(service)s twice (one id per service)", service=key))
        messaging[key] = value
    return messaging


def main_contacts(contacts: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The customer's main contacts with their positions: those marked `main`, or else the first contact
    (the one the handover rule has always called the main contact)."""
    marked = [(i, c) for i, c in enumerate(contacts) if c.get("main")]
    return marked or list(enumerate(contacts[:1]))


def clean_terms(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise _bad("terms", _l("must be an object"))
    if len(raw) > MAX_TERMS:
        raise _bad("terms", _l("has at most %(n)s entries", n=MAX_TERMS))
    terms: dict[str, str] = {}
    for key, value in raw.items():
        name = _text(key, "terms", 50)
        if not name:
            raise _bad("terms", _l("a term needs a name"))
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _bad(f"terms.{name}", _l("must be text or a number"))
        terms[name] = _text(str(value), f"terms.{name}", 200)
    return terms


def clean_changes(values: dict[str, Any]) -> dict[str, Any]:
    """The fields of an edit, checked; absent fields stay as they are.

    Raises:
        ServiceError: `invalid_record` naming the first bad field.
    """
    unknown = set(values) - set(FACTS) - set(GROUPS)
    if unknown:
        raise _bad(", ".join(sorted(unknown)), _l("unknown field"))
    changes: dict[str, Any] = {}
    for name in FACTS:
        if name in values:
            text = _text(values[name], name, _FACT_LIMITS.get(name, 32))
            if name == "status" and text and text not in STATUSES:
                raise _bad("status", _l("must be one of %(choices)s", choices=", ".join(STATUSES)))
            if name == "size" and text and text not in SIZES:
                raise _bad("size", _l("must be one of %(choices)s", choices=", ".join(SIZES)))
            changes[name] = text
    if "contacts" in values:
        changes["contacts"] = [clean_contact(c, f"contacts[{i}]")
                               for i, c in enumerate(_list(values["contacts"], "contacts", MAX_CONTACTS))]
    if "terms" in values:
        changes["terms"] = clean_terms(values["terms"] if values["terms"] is not None else {})
    if "notes" in values:
        changes["notes"] = _text(values["notes"], "notes", MAX_NOTES, lines=True)
    return changes


# -- reading ----------------------------------------------------------------------------------------------


@dataclass
class LogLine:
    id: int
    happened_on: date
    channel: str
    author: str
    verification: bool
    main_contact: bool | None  # None on a masked view: told only with the contacts (`policy.contacts_known`)
    contact: str
    topic: str
    result: str
    next_step: str


@dataclass
class RecordView:
    """A record as shown: facts in clear; contacts, terms, notes and log masked unless `revealed`."""

    customer_id: int
    facts: dict[str, str]
    contacts: list[dict[str, Any]]
    terms: dict[str, Any]
    notes: str
    version: int
    updated_at: datetime | None
    revealed: bool
    log: list[LogLine] = field(default_factory=list)


def hold_for_edit(session: Session, customer_id: int) -> None:
    """Lock what an edit of the customer's record locks (its record, or the customer while it has none),
    for a caller that writes an audit record before the edit (the page records its read of the customer).

    A record holds the head of its chain until the commit; an edit made meanwhile elsewhere holds the
    record and writes its own record next, perhaps to the same chain. Taken first, the lock makes the
    page wait for that edit instead of each holding what the other waits for (`vault.db.locking`).
    """
    if locked(session, CustomerRecord, customer_id) is None:
        locked(session, Customer, customer_id)


def record_of(session: Session, customer_id: int) -> CustomerRecord | None:
    return session.get(CustomerRecord, customer_id)


def ensure_record(rt: Runtime, session: Session, customer: Customer) -> CustomerRecord:
    """The customer's record, made (with a fresh data key) if it has none yet."""
    record = record_of(session, customer.id)
    if record is None:
        # Two first edits at once: the second waits for the first's record and builds on it, instead of
        # inserting a second one (refused by the database: a server error).
        locked(session, Customer, customer.id)
        record = record_of(session, customer.id)
    if record is None:
        key_id, wrapped, dek = new_record_key(rt, customer.id)
        # As for an upload's data key: the master key must still be there when the row commits.
        key_id, wrapped = key_use.settle(rt, session, key_id, wrapped, dek, key_context(customer.id))
        record = CustomerRecord(customer_id=customer.id, key_id=key_id, wrapped_key=wrapped, version=0,
                                legal_name="", address="", city="", industry="", size="", status="")
        session.add(record)
        session.flush()
    return record


def snapshot(rt: Runtime, record: CustomerRecord | None) -> dict[str, Any]:
    """The whole record in plain form (for sealing a version or a reveal; never for a page as is)."""
    if record is None:
        return {"facts": dict.fromkeys(FACTS, ""), "contacts": [], "terms": {}, "notes": ""}
    key = record_key(rt, record)
    return {
        "facts": {name: getattr(record, name) or "" for name in FACTS},
        "contacts": open_sealed(key, record.customer_id, "contacts", record.contacts, []),
        "terms": open_sealed(key, record.customer_id, "terms", record.terms, {}),
        "notes": open_sealed(key, record.customer_id, "notes", record.notes, ""),
    }


def masked(data: dict[str, Any]) -> dict[str, Any]:
    return {"facts": dict(data["facts"]), "contacts": [masking.mask_contact(c) for c in data["contacts"]],
            "terms": masking.mask_terms(data["terms"]), "notes": masking.mask_text(data["notes"])}


def _log_lines(rt: Runtime, session: Session, record: CustomerRecord | None, customer_id: int,
               *, reveal: bool) -> list[LogLine]:
    entries = list(session.scalars(select(ContactLogEntry).where(ContactLogEntry.customer_id == customer_id)
                                   .order_by(ContactLogEntry.happened_on.desc(), ContactLogEntry.id.desc())))
    if not entries:
        return []
    key = record_key(rt, record) if record is not None else None
    authors = {u.id: u.display_name for u in session.scalars(
        select(User).where(User.id.in_({e.author_id for e in entries if e.author_id})))}
    lines = []
    for entry in entries:
        body = open_sealed(key, customer_id, f"log:{entry.id}", entry.payload, {}) if key else {}
        if not reveal:
            body = {"contact": masking.mask_name(body.get("contact", "")),
                    **{k: masking.mask_text(body.get(k, "")) for k in ("topic", "result", "next_step")}}
        # Masked, the flag would tell whoever typed an entry's name whether it is the main contact's.
        lines.append(LogLine(entry.id, entry.happened_on, entry.channel, authors.get(entry.author_id or 0, ""),
                             entry.verification, entry.main_contact if reveal else None, body.get("contact", ""),
                             body.get("topic", ""), body.get("result", ""), body.get("next_step", "")))
    return lines


def _view(rt: Runtime, session: Session, customer: Customer, *, reveal: bool) -> RecordView:
    record = record_of(session, customer.id)
    data = snapshot(rt, record)
    shown = data if reveal else masked(data)
    return RecordView(customer_id=customer.id, facts=shown["facts"], contacts=shown["contacts"],
                      terms=shown["terms"], notes=shown["notes"], version=record.version if record else 0,
                      updated_at=record.updated_at if record else None, revealed=reveal,
                      log=_log_lines(rt, session, record, customer.id, reveal=reveal))


def masked_view(rt: Runtime, session: Session, customer: Customer) -> RecordView:
    """The record as every page and API answer shows it before a reveal."""
    return _view(rt, session, customer, reveal=False)


# -- revealing --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revealed:
    record: RecordView
    remaining: int  # reveals of this customer left in the period
    remaining_today: int  # reveals of any customer left today


def reveal_limits(rt: Runtime, actor: User, customer: Customer) -> tuple[int, int]:
    """(per-customer quota, daily cap) of the actor for this customer. Someone on notice stays co-owner of
    the customers they hand over until their last day (to introduce the successor), not to read their
    contacts as their owner did: on notice, everyone's quota is the one for customers they do not work."""
    cfg = rt.settings.records
    works = customer.worked_by(actor.id) and not on_notice(actor)
    return cfg.reveals(customer.segment, works), cfg.reveals_per_day


def remaining_reveals(rt: Runtime, session: Session, actor: User, customer: Customer) -> tuple[int, int]:
    """(reveals of this customer left in the period, reveals left today), without spending any."""
    now = utcnow()
    quota, cap = reveal_limits(rt, actor, customer)
    window = rt.settings.records.reveal_window_days
    spent = reveal_quota.used(session, actor.id, reveal_quota.CUSTOMER, customer.id,
                              reveal_quota.period_of(reveal_quota.CUSTOMER, now, window))
    today = reveal_quota.used(session, actor.id, reveal_quota.DAY, 0, reveal_quota.company_day(rt.settings, now))
    return max(0, quota - spent), max(0, cap - today)


def reveal_problems(*, reason: str, place: str) -> dict[str, policy.Decision]:
    """Every input rule (`policy.records.reveal_input_problems`) a reveal as typed breaks, by field.

    `reveal` refuses with the first of them only (one reason code, one refusal record, nothing spent); a
    page asks for them all so the person sees every slip in one answer. This decides, spends and records
    nothing; a slip never counts against anyone (`policy.SLIPS`)."""
    return reveal_input_problems({"reason": (reason or "").strip(), "place": (place or "").strip()})


def reveal(rt: Runtime, session: Session, actor: User, customer: Customer, *, reason: str, place: str,
           ctx: AccessContext) -> Revealed:
    """Show the record unmasked to the actor, once, for a stated reason and place.

    Spends a unit of the per-customer quota (owners and co-owners have their own, higher, one) and of the
    daily cap in this transaction; audited as `customer:reveal` with the reason and place, and counted as
    a directory access (`CustomerAccess` kind "reveal") for the sweep and outside-book alerts; the early
    warning judges its time, its place and how many customers outside the actor's book they revealed lately.

    The reason and place are judged by the policy before anything is spent, by the views' rule (a reason
    of ten characters in words, not a category's name; a place with a letter or digit), so a slip costs
    no reveal and is refused with the code a view's slip gets.

    Raises:
        ServiceError: a reason or place that is not text, or too long.
        policy.Denied: not visible, `reason_too_short`, `reason_not_meaningful`, `reason_copies_category`,
            `place_required`, `reveal_quota`, `reveal_daily_cap`.
    """
    reason = _text(reason, "reason", MAX_REASON, lines=True)
    place = _text(place, "place", MAX_PLACE)
    policy.require(actor, Action.CUSTOMER_REVEAL, customer, audit={"customer_id": customer.id}, reason=reason,
                   place=place)
    now = utcnow()
    quota, cap = reveal_limits(rt, actor, customer)
    window = rt.settings.records.reveal_window_days
    spent = reveal_quota.spend(session, actor.id, reveal_quota.CUSTOMER, customer.id,
                               reveal_quota.period_of(reveal_quota.CUSTOMER, now, window), quota)
    if spent is None:
        raise policy.Denied(policy.deny("reveal_quota"), customer_id=customer.id)
    today = reveal_quota.spend(session, actor.id, reveal_quota.DAY, 0, reveal_quota.company_day(rt.settings, now), cap)
    if today is None:
        # The refusal rolls the transaction back, and the customer's unit with it.
        raise policy.Denied(policy.deny("reveal_daily_cap"), customer_id=customer.id)
    declared = ctx.declaring(place)
    record = rt.audit.record(session, action=AuditAction.CUSTOMER_REVEAL, actor=actor, ctx=declared,
                             customer_id=customer.id, reason_text=reason,
                             detail={"place": place, "used": spent, "quota": quota, "today": today, "cap": cap})
    session.add(CustomerAccess(user_id=actor.id, customer_id=customer.id, kind="reveal", at=now))
    session.flush()
    # The place goes with the event for the new-place warning, and the record so it is not its own history.
    events.emit("customer.accessed", session=session, rt=rt, user=actor, customer_ids=[customer.id], kind="reveal",
                now=now, ctx=declared, audit_seq=record.seq)
    return Revealed(_view(rt, session, customer, reveal=True), quota - spent, cap - today)


# -- editing ----------------------------------------------------------------------------------------------


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """A record as path → value (`city`, `contacts[0].phones[1]`, `contacts[0].messaging.wechat`,
    `terms.discount`, `notes`), the unit of a diff."""
    flat: dict[str, Any] = {name: value for name, value in data["facts"].items() if value}
    for i, contact in enumerate(data["contacts"]):
        for key, value in contact.items():
            if isinstance(value, list):
                flat.update({f"contacts[{i}].{key}[{j}]": v for j, v in enumerate(value)})
            elif isinstance(value, dict):
                flat.update({f"contacts[{i}].{key}.{k}": v for k, v in value.items()})
            elif value:
                flat[f"contacts[{i}].{key}"] = value
    flat.update({f"terms.{k}": v for k, v in data["terms"].items()})
    if data["notes"]:
        flat["notes"] = data["notes"]
    return flat


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """What changed between two snapshots, with sensitive values masked (facts stay clear)."""
    old, new = flatten(before), flatten(after)
    return [Change(path, masking.mask_value(path, old.get(path)), masking.mask_value(path, new.get(path)))
            for path in sorted(set(old) | set(new)) if old.get(path) != new.get(path)]


def _changed_groups(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    names = [name for name in FACTS if before["facts"][name] != after["facts"][name]]
    return names + [name for name in GROUPS if before[name] != after[name]]


def edit(rt: Runtime, session: Session, actor: User | None, customer: Customer, values: dict[str, Any], *,
         ctx: AccessContext, expected_version: int | None = None) -> CustomerRecordVersion | None:
    """Apply an edit (absent fields unchanged) and keep the result as a new sealed version. Audited as
    `customer:edit` with the names of the fields changed (never values). An edit that changes nothing is
    the owner confirming the record is current: no version, `confirmed_at` set (the cadence restarts),
    audited as `customer:confirm`, and None returned.
    `actor` None is the product itself (demo data, migrations of records).

    `expected_version`: the version the editor saw (the page's form carries it; the API may send it). A
    record someone else changed since is not written over: the edit is refused, and what was typed is the
    editor's to compare and send again.

    Raises:
        policy.Denied: not the owner or a co-owner (`not_owner`), or not visible.
        ServiceError: `invalid_record`.
        RecordChanged: `record_changed` (someone else saved since the version expected).
    """
    if actor is not None:
        policy.require(actor, Action.CUSTOMER_EDIT, customer, audit={"customer_id": customer.id})
    return _apply(rt, session, actor, customer, values, ctx=ctx, expected_version=expected_version)


def first_version(rt: Runtime, session: Session, creator: User | None, customer: Customer, values: dict[str, Any],
                  *, ctx: AccessContext) -> CustomerRecordVersion | None:
    """The record's first content, given with the customer at its creation (the notes typed on the create
    form or sent to `POST /customers`): made with the customer's data key and kept as version 1, audited as
    `customer:edit` by the creator like any edit. The creator's right to create the customer covers it, even
    when the customer is made for another account manager; a customer that already has a record is edited.

    Raises:
        ServiceError: `invalid_record`.
    """
    return _apply(rt, session, creator, customer, values, ctx=ctx)


class RecordChanged(Conflict):
    """`record_changed`: someone else saved the record since the version an edit was made from; `version` is
    the record's version now, the one a form shown again is filled from."""

    def __init__(self, version: int, message: object) -> None:
        super().__init__("record_changed", message)
        self.version = version


def _refuse_others_since(session: Session, actor: User | None, record: CustomerRecord, seen: int) -> None:
    """Refuse an edit made from version `seen` when someone else saved a version since: theirs would be
    written over unseen. The editor's own later saves (a second tab, a form sent again) are theirs to
    overwrite.

    Raises:
        RecordChanged: naming the latest other author (None: the product itself) and the version now.
    """
    me = actor.id if actor is not None else None
    other = session.execute(
        select(CustomerRecordVersion.author_id)
        .where(CustomerRecordVersion.customer_id == record.customer_id, CustomerRecordVersion.number > seen,
               CustomerRecordVersion.author_id.is_distinct_from(me))
        .order_by(CustomerRecordVersion.number.desc()).limit(1)).first()
    if other is None:
        return
    by = session.get(User, other.author_id) if other.author_id is not None else None
    raise RecordChanged(record.version, _l(
        "The record was changed since you opened it (now version %(n)s, by %(name)s): nothing was saved. "
        "Compare it with what you typed, then save again.",
        n=record.version, name=by.display_name if by is not None else _l("the system")))


def _apply(rt: Runtime, session: Session, actor: User | None, customer: Customer, values: dict[str, Any], *,
           ctx: AccessContext, expected_version: int | None = None) -> CustomerRecordVersion | None:
    changes = clean_changes(values)
    record = ensure_record(rt, session, customer)
    # Read locked: an edit made meanwhile is built on, not written over under its own version number.
    locked(session, CustomerRecord, customer.id)
    if expected_version is not None and expected_version < record.version:
        _refuse_others_since(session, actor, record, expected_version)
    before = snapshot(rt, record)
    after = {"facts": {**before["facts"], **{k: v for k, v in changes.items() if k in FACTS}},
             "contacts": changes.get("contacts", before["contacts"]),
             "terms": changes.get("terms", before["terms"]),
             "notes": changes.get("notes", before["notes"])}
    changed = _changed_groups(before, after)
    if not changed:
        record.confirmed_at = utcnow()
        session.flush()
        rt.audit.record(session, action=AuditAction.CUSTOMER_CONFIRM, actor=actor, ctx=ctx, customer_id=customer.id,
                        detail={"version": record.version})
        return None
    key = record_key(rt, record)
    for name in FACTS:
        setattr(record, name, after["facts"][name])
    for group in GROUPS:
        if group in changed:
            setattr(record, group, seal(key, customer.id, group, after[group]))
    record.version += 1
    record.updated_at = utcnow()
    record.updated_by_id = actor.id if actor else None
    version = CustomerRecordVersion(customer_id=customer.id, number=record.version,
                                    author_id=record.updated_by_id, at=record.updated_at,
                                    changed=",".join(changed)[:300],
                                    payload=seal(key, customer.id, f"version:{record.version}", after))
    session.add(version)
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_EDIT, actor=actor, ctx=ctx, customer_id=customer.id,
                    detail={"version": record.version, "changed": changed})
    return version


# -- history ----------------------------------------------------------------------------------------------


@dataclass
class VersionView:
    number: int
    at: datetime
    author: str
    changed: list[str]
    changes: list[Change]


def open_version(rt: Runtime, record: CustomerRecord, version: CustomerRecordVersion) -> dict[str, Any]:
    """One version's whole record in plain form (the caller audits the opening, as `history` does)."""
    return open_sealed(record_key(rt, record), version.customer_id, f"version:{version.number}", version.payload)


def history(rt: Runtime, session: Session, actor: User, customer: Customer, *, ctx: AccessContext) -> list[VersionView]:
    """Every version, newest first, with its diff against the one before (masked); audited.

    Raises:
        policy.Denied: `not_in_chain` (only the owner, co-owners and their managers), or not visible.
    """
    policy.require(actor, Action.CUSTOMER_HISTORY, customer, audit={"customer_id": customer.id})
    record = record_of(session, customer.id)
    rows = [] if record is None else list(session.scalars(
        select(CustomerRecordVersion).where(CustomerRecordVersion.customer_id == customer.id)
        .order_by(CustomerRecordVersion.number)))
    authors = {u.id: u.display_name for u in session.scalars(
        select(User).where(User.id.in_({r.author_id for r in rows if r.author_id})))}
    views: list[VersionView] = []
    previous = snapshot(rt, None)
    for row in rows:
        assert record is not None
        current = open_version(rt, record, row)
        views.append(VersionView(row.number, row.at, authors.get(row.author_id or 0, ""),
                                 [c for c in row.changed.split(",") if c], diff(previous, current)))
        previous = current
    rt.audit.record(session, action=AuditAction.CUSTOMER_HISTORY, actor=actor, ctx=ctx, customer_id=customer.id,
                    detail={"versions": len(rows)})
    return list(reversed(views))


def old_version(rt: Runtime, session: Session, actor: User, customer: Customer, number: int, *,
                ctx: AccessContext) -> dict[str, Any]:
    """One past version of the record, masked like the current one; audited as `customer:version_read`.

    Raises:
        policy.Denied: as `history`.
        NotFound: no such version.
    """
    policy.require(actor, Action.CUSTOMER_HISTORY, customer, audit={"customer_id": customer.id})
    record = record_of(session, customer.id)
    row = None if record is None else session.scalar(select(CustomerRecordVersion).where(
        CustomerRecordVersion.customer_id == customer.id, CustomerRecordVersion.number == number))
    if record is None or row is None:
        raise NotFound("version", customer_id=customer.id)
    rt.audit.record(session, action=AuditAction.CUSTOMER_VERSION_READ, actor=actor, ctx=ctx,
                    customer_id=customer.id, detail={"version": number})
    return masked(open_version(rt, record, row))


# -- contact log ------------------------------------------------------------------------------------------


def successor_of(session: Session, actor: User, customer: Customer) -> HandoverItem | None:
    """The open handover item giving this customer to the actor, if a departure is under way and the
    customer has not since been given to someone else (`HandoverItem.moved`): a successor who lost the
    customer to another owner no longer logs contacts with it."""
    item = session.scalar(
        select(HandoverItem).join(Departure, Departure.id == HandoverItem.departure_id)
        .where(HandoverItem.customer_id == customer.id, HandoverItem.to_user_id == actor.id,
               Departure.status != DepartureStatus.COMPLETED, HandoverItem.confirmed_at.is_(None))
        .order_by(HandoverItem.id.desc()).limit(1))
    return None if item is None or item.moved else item


def _same_person(a: str, b: str) -> bool:
    def fold(text: str) -> str:
        plain = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
        return " ".join(plain.casefold().split())
    return bool(a.strip()) and fold(a) == fold(b)


def add_log(rt: Runtime, session: Session, actor: User | None, customer: Customer, *, happened_on: date,
            channel: str, contact: str, topic: str, result: str = "", next_step: str = "",
            verification: bool = False, ctx: AccessContext) -> ContactLogEntry:
    """Log a visit, call or meeting (sealed like the notes); audited as `customer:log` without its text.

    A verification visit is a manager's: only someone above the owner in the chain may mark one. The entry
    is flagged `main_contact` when the person reached is one of the record's main contacts (`main_contacts`:
    those marked main, else the first; the same the letters write to), as the handover of a key customer
    asks for such an entry by the successor.

    Raises:
        policy.Denied: `not_working`, or not visible.
        ServiceError: `invalid_log` (bad channel, date in the future or over a year back, empty topic).
    """
    if actor is not None:
        policy.require(actor, Action.CUSTOMER_LOG, customer, successor=successor_of(session, actor, customer)
                       is not None, audit={"customer_id": customer.id})
    if channel not in CHANNELS:
        raise InvalidLog("channel", _l("The channel must be one of %(choices)s.", choices=", ".join(CHANNELS)))
    today = utcnow().date()
    if not isinstance(happened_on, date) or happened_on > today or happened_on < today - timedelta(days=366):
        raise InvalidLog("happened_on", _l("The date must be within the last year and not in the future."))
    body = {"contact": _text(contact, "contact", 100), "topic": _text(topic, "topic", 500, lines=True),
            "result": _text(result, "result", 2000, lines=True),
            "next_step": _text(next_step, "next_step", 500, lines=True)}
    if not body["contact"] or not body["topic"]:
        raise InvalidLog("contact" if not body["contact"] else "topic", _l("Name the person reached and the topic."))
    if verification and actor is not None and customer.worked_by(actor.id):
        raise InvalidLog("verification", _l("A verification visit is made by a manager, not by the account team."))
    record = ensure_record(rt, session, customer)
    contacts = snapshot(rt, record)["contacts"]
    entry = ContactLogEntry(customer_id=customer.id, author_id=actor.id if actor else None,
                            happened_on=happened_on, channel=channel, verification=bool(verification),
                            main_contact=any(_same_person(body["contact"], main["name"])
                                             for _i, main in main_contacts(contacts)),
                            logged_at=utcnow(), payload=b"")
    session.add(entry)
    session.flush()
    entry.payload = seal(record_key(rt, record), customer.id, f"log:{entry.id}", body)
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_LOG, actor=actor, ctx=ctx, customer_id=customer.id,
                    detail={"entry": entry.id, "channel": channel, "on": happened_on.isoformat(),
                            "verification": entry.verification, "main_contact": entry.main_contact})
    return entry


def last_reveal(session: Session, user_id: int, customer_id: int) -> datetime | None:
    """When the person last revealed the customer's record (its `CustomerAccess` "reveal" row), if ever."""
    return session.scalar(select(func.max(CustomerAccess.at)).where(
        CustomerAccess.user_id == user_id, CustomerAccess.customer_id == customer_id, CustomerAccess.kind == "reveal"))


def main_contact_told(session: Session, actor: User, customer: Customer, entry: ContactLogEntry) -> bool | None:
    """Whether the entry reached the main contact, as the actor may be told it: the stored flag (which the
    handover rule reads, `reached_main_contact`) to someone whose reveal still shows them the contacts
    (`policy.records.contacts_known`), None to anyone else, whatever name they typed, so the answer to a
    log cannot confirm a guessed name the record masks."""
    record = record_of(session, customer.id)
    known = contacts_known(last_reveal(session, actor.id, customer.id), record.updated_at if record else None,
                           utcnow())
    return entry.main_contact if known else None


def log_by_product(rt: Runtime, session: Session, customer: Customer, *, contact: str, topic: str, result: str = "",
                   main_contact: bool, ctx: AccessContext, detail: dict[str, Any] | None = None) -> ContactLogEntry:
    """An entry the product writes itself (channel "letter": a letter sent, a customer's answer through its
    link), sealed like any other and audited as `customer:log` with no actor. It has no author, so it never
    counts as a person reaching the customer (`reached_main_contact`)."""
    record = ensure_record(rt, session, customer)
    now = utcnow()
    entry = ContactLogEntry(customer_id=customer.id, author_id=None, happened_on=now.date(), channel=LETTER_CHANNEL,
                            verification=False, main_contact=main_contact, logged_at=now, payload=b"")
    session.add(entry)
    session.flush()
    body = {"contact": contact[:100], "topic": topic[:500], "result": result[:2000], "next_step": ""}
    entry.payload = seal(record_key(rt, record), customer.id, f"log:{entry.id}", body)
    session.flush()
    rt.audit.record(session, action=AuditAction.CUSTOMER_LOG, actor=None, ctx=ctx, customer_id=customer.id,
                    detail={"entry": entry.id, "channel": LETTER_CHANNEL, "on": entry.happened_on.isoformat(),
                            "verification": False, "main_contact": main_contact, **(detail or {})})
    return entry


def reached_main_contact(session: Session, customer_id: int, user_id: int, since: datetime) -> bool:
    """Whether `user_id` logged reaching the customer's main contact on or after `since` (the handover rule)."""
    return session.scalar(select(ContactLogEntry.id).where(
        ContactLogEntry.customer_id == customer_id, ContactLogEntry.author_id == user_id,
        ContactLogEntry.main_contact.is_(True), ContactLogEntry.happened_on >= since.date(),
        ContactLogEntry.logged_at >= since).limit(1)) is not None
