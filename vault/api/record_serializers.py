"""The customer record as JSON (masked or revealed), its history and contact log, with their OpenAPI schemas.

Registered into `vault.api.serializers.SCHEMAS` at import, like every other shape of the API.
"""

from __future__ import annotations

from typing import Any

from vault.api.serializers import SCHEMAS, _object, _ref, timestamp
from vault.core.languages import LANGUAGES
from vault.services.pool import OWNERSHIP_ACTIONS, OwnershipEvent
from vault.services.records import FACTS, LOG_CHANNELS, SIZES, STATUSES, Change, LogLine, RecordView, VersionView

_TEXT = {"type": "string"}
_TEXTS = {"type": "array", "items": _TEXT}


def log_line(line: LogLine) -> dict[str, Any]:
    return {"id": line.id, "happened_on": line.happened_on.isoformat(), "channel": line.channel,
            "author": line.author, "verification": line.verification, "main_contact": line.main_contact,
            "contact": line.contact, "topic": line.topic, "result": line.result, "next_step": line.next_step}


def record(view: RecordView) -> dict[str, Any]:
    return {"revealed": view.revealed, "version": view.version, "updated_at": timestamp(view.updated_at),
            **{name: view.facts.get(name, "") for name in FACTS},
            "contacts": view.contacts, "terms": view.terms, "notes": view.notes,
            "log": [log_line(line) for line in view.log]}


def _change(change: Change) -> dict[str, Any]:
    return {"field": change.field, "before": change.before, "after": change.after}


def version(item: VersionView) -> dict[str, Any]:
    return {"number": item.number, "at": timestamp(item.at), "author": item.author, "changed": item.changed,
            "changes": [_change(c) for c in item.changes]}


def ownership(item: OwnershipEvent) -> dict[str, Any]:
    """One change of who owns the customer, as the history page lists it."""
    return {"at": timestamp(item.at), "action": item.action, "person": item.person or None,
            "actor": item.actor or None, "reason": item.reason or None}


def old_version(number: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"number": number, **{name: data["facts"].get(name, "") for name in FACTS},
            "contacts": data["contacts"], "terms": data["terms"], "notes": data["notes"]}


_CONTACT = _object({
    "name": _TEXT, "role": _TEXT, "phones": _TEXTS, "emails": _TEXTS,
    "messaging": {"type": "object", "additionalProperties": _TEXT}, "birthday": _TEXT, "preferences": _TEXT,
}, "A contact person; masked (`+49 ••• ••• 96`, `j•••@nordlicht.example`) until revealed.")
# Present only when set: the language letters to the contact are written in, and the main-contact mark.
_CONTACT["properties"].update({"language": {"type": "string", "enum": list(LANGUAGES)}, "main": {"type": "boolean"}})
_FACTS = {name: _TEXT for name in FACTS}
_GROUPS = {"contacts": {"type": "array", "items": _ref("RecordContact")},
           "terms": {"type": "object", "additionalProperties": _TEXT}, "notes": _TEXT}
_SCALAR_OR_NULL = {"type": ["string", "null"]}

SCHEMAS["RecordContact"] = _CONTACT
SCHEMAS["LogEntry"] = _object({
    "id": {"type": "integer", "minimum": 1}, "happened_on": {"type": "string", "format": "date"},
    "channel": {"type": "string", "enum": list(LOG_CHANNELS)}, "author": _TEXT, "verification": {"type": "boolean"},
    "main_contact": {"type": ["boolean", "null"],
                     "description": "Whether the person reached is the main contact: null until revealed, since "
                                    "it would confirm the masked name."},
    "contact": _TEXT, "topic": _TEXT, "result": _TEXT, "next_step": _TEXT,
}, "A visit, call or meeting; who was reached and what was said are masked until revealed.")
SCHEMAS["CustomerRecord"] = _object({
    "revealed": {"type": "boolean"}, "version": {"type": "integer", "minimum": 0},
    "updated_at": {"type": ["string", "null"], "format": "date-time"}, **_FACTS, **_GROUPS,
    "log": {"type": "array", "items": _ref("LogEntry")},
}, "The structured record: facts in clear; contacts, terms, notes and the log masked unless `revealed`.")
SCHEMAS["CustomerDetail"]["properties"]["record"] = _ref("CustomerRecord")
SCHEMAS["CustomerDetail"]["required"] = [*SCHEMAS["CustomerDetail"]["required"], "record"]
SCHEMAS["Revealed"] = _object({
    "record": _ref("CustomerRecord"),
    "remaining": {"type": "integer", "minimum": 0, "description": "Reveals of this customer left in the period."},
    "remaining_today": {"type": "integer", "minimum": 0, "description": "Reveals of any customer left today."},
})
SCHEMAS["RecordChange"] = _object({"field": _TEXT, "before": _SCALAR_OR_NULL, "after": _SCALAR_OR_NULL})
SCHEMAS["RecordVersion"] = _object({
    "number": {"type": "integer", "minimum": 1}, "at": {"type": "string", "format": "date-time"}, "author": _TEXT,
    "changed": _TEXTS, "changes": {"type": "array", "items": _ref("RecordChange")},
}, "One version: who, when, which fields, and the diff against the version before (sensitive values masked).")
SCHEMAS["OwnershipChange"] = _object({
    "at": {"type": "string", "format": "date-time"},
    "action": {"type": "string", "enum": [str(a) for a in OWNERSHIP_ACTIONS],
               "description": "What happened: created, owner changed, handed over in a departure, claimed from, "
                              "assigned from or returned to the pool, a claim lapsed, returned by a departure."},
    "person": {"type": ["string", "null"], "description": "Whom it was about: the new owner, or the one who lost "
                                                          "the customer (today's name)."},
    "actor": {"type": ["string", "null"], "description": "Who did it, as recorded; null for the product itself."},
    "reason": {"type": ["string", "null"]},
}, "A change of the customer's account manager, from the audit log.")
SCHEMAS["RecordHistory"] = _object({
    "versions": {"type": "array", "items": _ref("RecordVersion")},
    "ownership": {"type": "array", "items": _ref("OwnershipChange"), "maxItems": 200,
                  "description": "Who owned the customer when, newest first (the latest 200 changes)."},
})
SCHEMAS["RecordSnapshot"] = _object({"number": {"type": "integer", "minimum": 1}, **_FACTS, **_GROUPS},
                                    "A past version of the record, masked like the current one.")
SCHEMAS["LogCreated"] = _object({
    "id": {"type": "integer", "minimum": 1},
    "main_contact": {"type": ["boolean", "null"],
                     "description": "Whether the name typed is the customer's main contact: told only to someone "
                                    "whose reveal of the customer, within 12 hours and with no change of the "
                                    "record since, showed them the contacts; null otherwise, whatever was typed."},
})

_CONTACT_INPUT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "role": {"type": "string", "maxLength": 100},
        "phones": {"type": "array", "maxItems": 5,
                   "items": {"type": "string", "pattern": r"^\+?[0-9][0-9 ()./-]{3,38}$", "maxLength": 40}},
        "emails": {"type": "array", "maxItems": 5,
                   "items": {"type": "string", "format": "email", "maxLength": 200}},
        "messaging": {"type": "object", "maxProperties": 5,
                      "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 100}},
        "birthday": {"type": "string", "format": "date"},
        "preferences": {"type": "string", "maxLength": 500},
        "language": {"type": "string", "enum": list(LANGUAGES)},
        "main": {"type": "boolean"},
    },
    "required": ["name"],
    "additionalProperties": False,
}
RECORD_EDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Fields left out stay as they are; `contacts`, `terms` and `notes` replace the whole group.",
    "properties": {
        "legal_name": {"type": "string", "maxLength": 200},
        "address": {"type": "string", "maxLength": 300},
        "city": {"type": "string", "maxLength": 100},
        "industry": {"type": "string", "maxLength": 100},
        "size": {"type": "string", "enum": ["", *SIZES]},
        "status": {"type": "string", "enum": ["", *STATUSES]},
        "contacts": {"type": "array", "maxItems": 20, "items": _CONTACT_INPUT},
        "terms": {"type": "object", "maxProperties": 20,
                  "additionalProperties": {"type": ["string", "number"], "maxLength": 200},
                  "description": "payment, discount, credit_limit, price_list, renewal_date, or any other."},
        "notes": {"type": "string", "maxLength": 4000},
        "version": {"type": "integer", "minimum": 0, "maximum": 2147483647,
                    "description": "The record's version the change was made from (as read): when the record "
                                   "has another version now, 409 `record_changed` and nothing is saved. Left "
                                   "out, the change is made over whatever version the record has."},
    },
    "additionalProperties": False,
}
