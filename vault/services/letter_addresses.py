"""The addresses a leaver took out of a customer's record, to which the letter about a new manager also goes.

A letter introducing a new account manager goes to the main contacts' addresses as the record holds them
(`letters.prepare`). A leaver who replaced the customer's address with their own before notice would be
told instead of the customer, and would learn the successor's name while the customer learned nothing; the
departure report only flags such edits (`contacts_edited`). So the letter also goes to every address that
a leaver's own edit took out of the addresses letters go to, found in the record's sealed version history.

What counts:
- A letter address is the first e-mail of a main contact (`records.main_contacts`), as `prepare` takes it:
  an address moved to second place, a contact no longer marked main or put behind a new first contact, and
  a contact deleted whole all take the address out, and each is followed.
- A leaver is a person with a departure (on notice, or gone; a withdrawn notice leaves none). Their edits
  are doubted from `[departure] lookback_days` before the start of their notice day onward
  (`departures.notice_began`): the departure report counts a leaver's contact edits over the same window,
  and anchoring it at the notice keeps a letter sent late in a long notice period looking as far back as
  one sent on the first day. Edits after the notice are doubted too.
- Edits by anyone else stand as they are: an address someone else took out is not brought back, and the
  state a leaver's first doubted edit found (whoever made it) is the starting point.
- An address a leaver brought into the record is never an earlier address, even once they take it out
  again, however long before the window they put it in: the whole history says who brought each address
  in. It is the customer's when anyone else's version brought it in (before or after the leaver's), and so
  are the addresses the record was first given, whoever wrote them: a salesperson usually sets up their own
  customer's record, and counting those as the leaver's would let a leaver replace them all unseen. An
  address that is back in the record (changed back, by anyone) gets its letter as a current one, once.

Nothing here writes: the caller audits what was opened (`customer:contacts_system_read` names the versions)
and what was sent (`customer:letter` names each earlier address, masked, with the edit that took it out).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.models import CustomerRecord, CustomerRecordVersion, Departure
from vault.runtime import Runtime
from vault.services import records
from vault.services.departures import notice_began

# Why an address left the letters, as the audit record says it.
ADDRESS_CHANGED = "address_changed"  # the contact is still a main contact, with another first address
NO_LONGER_MAIN = "no_longer_main"  # the contact is still there, but no longer one letters go to
CONTACT_REMOVED = "contact_removed"  # no contact of that name is left


@dataclass(frozen=True)
class Earlier:
    """An address a leaver's edit took out, and the contact as it was just before that edit."""

    address: str
    contact: dict[str, Any]
    contact_index: int  # the contact's position in the version before the edit
    version: int  # the leaver's edit that took the address out
    edited_by: int
    edited_at: datetime
    why: str


def address_of(contact: dict[str, Any]) -> str:
    """The address a letter to `contact` goes to: its first e-mail, or "" (none)."""
    emails = contact.get("emails") or []
    return str(emails[0]).strip() if emails else ""


def key(address: str) -> str:
    """An address as compared: mailboxes are matched without regard to case or surrounding spaces."""
    return address.strip().casefold()


def letter_addresses(contacts: list[dict[str, Any]]) -> dict[str, tuple[int, dict[str, Any], str]]:
    """The addresses letters would go to for these contacts: key → (position, contact, address)."""
    found: dict[str, tuple[int, dict[str, Any], str]] = {}
    for index, contact in records.main_contacts(contacts):
        address = address_of(contact)
        if address and key(address) not in found:
            found[key(address)] = (index, contact, address)
    return found


def all_addresses(contacts: list[dict[str, Any]]) -> set[str]:
    """Every e-mail address in these contacts, as compared (`key`), wherever it stands in a contact."""
    return {key(str(email)) for contact in contacts for email in contact.get("emails") or [] if str(email).strip()}


def doubted_since(rt: Runtime, session: Session, author_ids: set[int]) -> dict[int, datetime]:
    """The leavers among `author_ids`, each with the moment from which their edits are doubted."""
    if not author_ids:
        return {}
    days = timedelta(days=rt.settings.departure.lookback_days)
    since: dict[int, datetime] = {}
    for departure in session.scalars(select(Departure).where(Departure.user_id.in_(author_ids))):
        since[departure.user_id] = notice_began(rt.settings, departure) - days
    return since


def _why(contact: dict[str, Any], after: list[dict[str, Any]], after_main: set[int]) -> str:
    name = str(contact.get("name", "")).strip().casefold()
    same = [i for i, c in enumerate(after) if str(c.get("name", "")).strip().casefold() == name]
    if not same:
        return CONTACT_REMOVED
    return ADDRESS_CHANGED if any(i in after_main for i in same) else NO_LONGER_MAIN


def earlier_addresses(rt: Runtime, session: Session, record: CustomerRecord) -> tuple[list[Earlier], list[int]]:
    """The addresses leavers' edits took out of the letters and that are not back in them, oldest edit
    first, each once; and the numbers of the versions opened to find them (none when no leaver's edit of
    the contacts falls in its window, the usual case, so nothing sealed is opened for nothing)."""
    rows = session.execute(
        select(CustomerRecordVersion.id, CustomerRecordVersion.number, CustomerRecordVersion.author_id,
               CustomerRecordVersion.at, CustomerRecordVersion.changed)
        .where(CustomerRecordVersion.customer_id == record.customer_id)
        .order_by(CustomerRecordVersion.number)).all()
    touching = [row for row in rows if "contacts" in row.changed.split(",")]
    since = doubted_since(rt, session, {row.author_id for row in touching if row.author_id is not None})

    def doubted(row: Any) -> bool:
        return row.author_id in since and row.at >= since[row.author_id]

    first = next((row for row in touching if doubted(row)), None)
    if first is None:
        return [], []
    opened: list[int] = []

    def contacts_of(row: Any) -> list[dict[str, Any]]:
        version = session.get(CustomerRecordVersion, row.id)
        assert version is not None  # listed a moment ago, and versions are never deleted
        opened.append(row.number)
        return list(records.open_version(rt, record, version).get("contacts") or [])

    # Who brought each address into the record, over the whole history: the leaver's own mailbox may have
    # been put in long before the window (an edit that stands) and be taken out inside it. The contacts the
    # record was first given are the customer's whoever wrote them (a salesperson usually sets up their own
    # customer's record; counting those as the leaver's would let a leaver replace them all unseen).
    present: set[str] = set()
    set_up = False  # whether the record has been given an address yet
    theirs: set[str] = set()  # brought in by a leaver
    vouched: set[str] = set()  # brought in by anyone else, or with the record's first contacts
    current: dict[str, tuple[int, dict[str, Any], str]] = {}
    taken: dict[str, Earlier] = {}
    for row in touching:
        after = contacts_of(row)
        held = all_addresses(after)
        brought = held - present
        (vouched if not set_up or row.author_id not in since else theirs).update(brought)
        set_up = set_up or bool(held)
        following = letter_addresses(after)
        if row.number >= first.number:
            for k in following.keys() - current.keys():
                # Back in the record (changed back, by anyone): it gets its letter as a current address.
                taken.pop(k, None)
            if doubted(row):
                after_main = {i for i, _c in records.main_contacts(after)}
                for k in current.keys() - following.keys():
                    index, contact, address = current[k]
                    taken[k] = Earlier(address=address, contact=contact, contact_index=index, version=row.number,
                                       edited_by=row.author_id, edited_at=row.at,
                                       why=_why(contact, after, after_main))
        current = following
        present = held
    # An address only ever brought in by a leaver is theirs, never the customer's earlier one.
    found = [e for k, e in taken.items() if k in vouched or k not in theirs]
    return sorted(found, key=lambda e: (e.version, e.contact_index)), opened
