"""Keeping customer records current: the cadence by segment, overdue records and the completeness score.

Public entry points (for the home page and the managers' views):
- `overdue_customers(rt, session, actor)` — the records the actor must bring up to date: those they own
  or co-own, and for a manager those of everyone below them in the chain (not while the manager is on
  notice: `policy.visibility.book_and_team`), overdue first by days late.
- `overdue_book(rt, session, actor)` — the same records from clear columns only, cheap enough for the
  menu's badge on every request.
- `team_completeness(rt, session, actor)` — every record of the actor's own book and their team's, with its
  completeness score and what is missing, weakest first.
- `record_state(rt, session, customer, at=None)` — one customer's figures, now or as they were at a moment
  (the departure report asks for the day of notice).
None of them audits or masks anything: they return counts, dates and field names, never contact data.

A record is *current* from its last edit or confirmation (`CustomerRecord.updated_at` / `confirmed_at`;
a customer without a record counts from its creation) for `[records] cadence_<segment>` days (VIP 30,
key 60, ordinary 180 by default); after that it is *overdue*.

The completeness score (0-100) adds three parts, each computed from the record as it stood:
- 40 × (required facts filled) / 6 — legal name, address, city, industry, size, business status;
- 30 × (contacts with at least one phone or e-mail) / (contacts) — 0 without any contact;
- 30 when the latest contact-log entry is within the cadence, 15 within twice the cadence, else 0;
rounded down to a whole number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.models import ContactLogEntry, Customer, CustomerRecord, CustomerRecordVersion, User, utcnow
from vault.policy.visibility import book_and_team
from vault.runtime import Runtime
from vault.services.record_crypto import open_sealed, record_key
from vault.services.records import FACTS, snapshot

REQUIRED = FACTS  # legal_name, address, city, industry, size, status


@dataclass(frozen=True)
class RecordState:
    """One customer's upkeep figures."""

    customer_id: int
    name: str
    segment: str
    owner_id: int | None
    current_since: datetime
    due_on: date
    overdue_days: int  # 0 when not overdue
    completeness: int  # 0-100
    missing: tuple[str, ...]  # required facts left empty, "contacts", "reachable contacts", "contact log"
    last_contact: date | None

    @property
    def overdue(self) -> bool:
        return self.overdue_days > 0


def completeness(data: dict[str, Any], last_contact: date | None, cadence_days: int,
                 today: date) -> tuple[int, list[str]]:
    """The score and what is missing, for a record's plain `snapshot` (see the module docstring)."""
    missing = [name for name in REQUIRED if not str(data["facts"].get(name) or "").strip()]
    score = 40 * (len(REQUIRED) - len(missing)) / len(REQUIRED)
    contacts = data["contacts"]
    reachable = sum(1 for c in contacts if c.get("phones") or c.get("emails"))
    if not contacts:
        missing.append("contacts")
    else:
        score += 30 * reachable / len(contacts)
        if reachable < len(contacts):
            missing.append("reachable contacts")
    age = None if last_contact is None else (today - last_contact).days
    if age is not None and age <= cadence_days:
        score += 30
    elif age is not None and age <= 2 * cadence_days:
        score += 15
        missing.append("contact log")
    else:
        missing.append("contact log")
    return int(score), missing


def _snapshot_at(rt: Runtime, session: Session, record: CustomerRecord | None, at: datetime | None) -> dict[str, Any]:
    if record is None or at is None:
        return snapshot(rt, record)
    row = session.scalar(select(CustomerRecordVersion).where(
        CustomerRecordVersion.customer_id == record.customer_id, CustomerRecordVersion.at <= at)
        .order_by(CustomerRecordVersion.number.desc()).limit(1))
    if row is None:
        return snapshot(rt, None)
    return open_sealed(record_key(rt, record), record.customer_id, f"version:{row.number}", row.payload)


def record_state(rt: Runtime, session: Session, customer: Customer, *, at: datetime | None = None) -> RecordState:
    """The customer's cadence, overdue days and completeness, now or as they stood at `at`."""
    moment = at or utcnow()
    record = session.get(CustomerRecord, customer.id)
    data = _snapshot_at(rt, session, record, at)
    cadence = rt.settings.records.cadence(customer.segment)
    if at is None and record is not None:
        marks = [record.updated_at, record.confirmed_at]
    elif record is not None:
        marks = [session.scalar(select(func.max(CustomerRecordVersion.at)).where(
            CustomerRecordVersion.customer_id == customer.id, CustomerRecordVersion.at <= at))]
    else:
        marks = []
    current_since = max([m for m in marks if m is not None] or [customer.created_at])
    due = current_since + timedelta(days=cadence)
    overdue_days = max(0, (moment.date() - due.date()).days)
    last_contact = session.scalar(select(func.max(ContactLogEntry.happened_on)).where(
        ContactLogEntry.customer_id == customer.id, ContactLogEntry.happened_on <= moment.date(),
        ContactLogEntry.logged_at <= moment))
    score, missing = completeness(data, last_contact, cadence, moment.date())
    return RecordState(customer.id, customer.name, str(customer.segment), customer.owner_id, current_since,
                       due.date(), overdue_days, score, tuple(missing), last_contact)


def team_completeness(rt: Runtime, session: Session, actor: User) -> list[RecordState]:
    """Every record of the actor's book and their team's, weakest first (then by name)."""
    customers = session.scalars(select(Customer).where(book_and_team(actor)).order_by(Customer.name))
    states = [record_state(rt, session, c) for c in customers]
    return sorted(states, key=lambda s: (s.completeness, s.name))


def overdue_customers(rt: Runtime, session: Session, actor: User) -> list[RecordState]:
    """The records the actor (and, for a manager, their team) must bring up to date: overdue ones, most
    overdue first. For the home page's to-do list."""
    return sorted((s for s in team_completeness(rt, session, actor) if s.overdue),
                  key=lambda s: (-s.overdue_days, s.name))


@dataclass(frozen=True)
class Overdue:
    """A record past its cadence, as the to-do list shows it: no contact data, nothing decrypted."""

    id: int  # the customer's
    name: str
    overdue_days: int


def overdue_book(rt: Runtime, session: Session, actor: User) -> list[Overdue]:
    """The same records as `overdue_customers`, from one query on clear columns (dates and segments), so
    the home page and the menu's badge can ask on every request without opening a sealed record."""
    rows = session.execute(
        select(Customer.id, Customer.name, Customer.segment, Customer.created_at, CustomerRecord.updated_at,
               CustomerRecord.confirmed_at)
        .outerjoin(CustomerRecord, CustomerRecord.customer_id == Customer.id).where(book_and_team(actor)))
    today = utcnow().date()
    late = []
    for customer_id, name, segment, created_at, updated_at, confirmed_at in rows:
        current_since = max([m for m in (updated_at, confirmed_at) if m is not None] or [created_at])
        days = (today - (current_since + timedelta(days=rt.settings.records.cadence(segment))).date()).days
        if days > 0:
            late.append(Overdue(customer_id, name, days))
    return sorted(late, key=lambda o: (-o.overdue_days, o.name))


def states_for(rt: Runtime, session: Session, customer_ids: list[int], *, at: datetime | None = None
               ) -> dict[int, RecordState]:
    """Figures for the given customers (the departure report: the leaver's, at the day of notice)."""
    customers = session.scalars(select(Customer).where(Customer.id.in_(customer_ids))) if customer_ids else []
    return {c.id: record_state(rt, session, c, at=at) for c in customers}
