"""Masked forms of a record's sensitive values: enough to recognise a contact, not enough to call them.

`+49 170 1234596` → `+49 ••• ••• 96`; `jana@nordlicht.example` → `j•••@nordlicht.example`; a messaging
ID keeps its first character; names keep their initials; terms, birthdays, preferences and notes keep
nothing but the fact that they are there. Every page and API answer shows these until the person spends
a reveal (`vault.services.records.reveal`).
"""

from __future__ import annotations

from typing import Any

DOT = "•"
HIDDEN = DOT * 3


# At least this many digits of a number stay hidden: a short number (an extension, one typed without its
# area code) shows fewer digits, or none, rather than all it has.
MIN_HIDDEN_DIGITS = 5


def mask_phone(phone: str) -> str:
    """The country code (or first two digits) and the last two digits, as long as at least
    `MIN_HIDDEN_DIGITS` stay hidden; else the last two only, or nothing."""
    text = " ".join(str(phone).split())
    digits = [ch for ch in text if ch.isdigit()]
    if len(digits) - 2 < MIN_HIDDEN_DIGITS:
        return HIDDEN
    if text.startswith("+"):
        head = text.split(" ", 1)[0] if " " in text else "+" + "".join(digits[:2])
        if len(head) > 5:
            head = "+" + "".join(digits[:2])
    else:
        head = "".join(digits[:2])
    if len(digits) - 2 - sum(ch.isdigit() for ch in head) < MIN_HIDDEN_DIGITS:
        return f"{HIDDEN} {HIDDEN} {''.join(digits[-2:])}"
    return f"{head} {HIDDEN} {HIDDEN} {''.join(digits[-2:])}"


def mask_email(email: str) -> str:
    local, at, domain = str(email).strip().partition("@")
    if not at or not local:
        return HIDDEN
    return f"{local[0]}{HIDDEN}@{domain}"


def mask_handle(handle: str) -> str:
    text = str(handle).strip()
    return f"{text[0]}{HIDDEN}" if text else HIDDEN


def mask_name(name: str) -> str:
    """Initials only: "Jana Novák" → "J••• N•••"."""
    return " ".join(f"{part[0]}{HIDDEN}" for part in str(name).split()) or HIDDEN


def mask_contact(contact: dict[str, Any]) -> dict[str, Any]:
    # The letters' language and the main-contact mark say nothing a competitor could use: kept as they are.
    extra = {key: contact[key] for key in ("language", "main") if key in contact}
    return {**extra,
        "name": mask_name(contact.get("name", "")),
        "role": contact.get("role", ""),  # a job title names nobody
        "phones": [mask_phone(p) for p in contact.get("phones", [])],
        "emails": [mask_email(e) for e in contact.get("emails", [])],
        "messaging": {service: mask_handle(handle) for service, handle in contact.get("messaging", {}).items()},
        "birthday": HIDDEN if contact.get("birthday") else "",
        "preferences": HIDDEN if contact.get("preferences") else "",
    }


def mask_terms(terms: dict[str, Any]) -> dict[str, str]:
    return {key: HIDDEN for key in terms}


def mask_text(text: str) -> str:
    return HIDDEN if text else ""


def mask_value(path: str, value: Any) -> Any:
    """The masked form of one flattened record value (`contacts[0].phones[1]`, `terms.discount`, `notes`),
    for diffs; clear facts pass unchanged."""
    if value in (None, ""):
        return value
    leaf = path.rsplit(".", 1)[-1]
    if path.startswith("contacts"):
        if ".messaging." in path:
            # The service's name is typed by people: one called "role" or "phones" is still a handle.
            return mask_handle(value)
        if leaf.startswith("phones"):
            return mask_phone(value)
        if leaf.startswith("emails"):
            return mask_email(value)
        if leaf == "name":
            return mask_name(value)
        if leaf == "role":
            return value
        return HIDDEN
    if path.startswith(("terms", "notes")):
        return HIDDEN
    return value
