"""The demo company's customer records: facts, contacts, terms, notes and a year of contact log.

Deterministic: every value comes from the customer's demo profile (`demo_content.profile`) and its index,
and every date counts back from the day the demo is seeded. Some records are left overdue (last updated
longer ago than their segment's cadence) and some incomplete (facts missing, a contact without a phone or
an e-mail, no recent contact), so the upkeep figures have something to show.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from vault.core.context import AccessContext
from vault.models import Customer, CustomerRecord, Segment, User, utcnow
from vault.runtime import Runtime
from vault.services import demo_content, records

INDUSTRIES = ("Logistics", "Retail", "Food", "Healthcare", "Seafood", "Manufacturing", "Agriculture", "Construction",
              "Optics", "Hospitality")
MESSAGING = ("whatsapp", "telegram", "wechat")
# Every gap between contacts, by segment (days): VIP monthly, key every two months, ordinary quarterly.
LOG_EVERY = {Segment.VIP: 30, Segment.KEY: 61, Segment.ORDINARY: 91}


@dataclass(frozen=True)
class DemoRecord:
    """What the demo gives one customer, and how old it makes it."""

    values: dict[str, Any]
    updated_days_ago: int  # the record's last edit
    last_contact_days_ago: int  # the newest contact-log entry
    incomplete: bool


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join(map(str, parts)))  # noqa: S311 (demo data: reproducible, not secret)


def messaging_id(service: str, rng: random.Random) -> str:
    if service == "wechat":
        return "wxid_" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(10))
    if service == "telegram":
        return "@tg" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(8))
    return f"+{rng.randint(30, 49)} {rng.randint(600, 699)} {rng.randint(1000000, 9999999)}"


def record_for(spec: demo_content.DemoCustomer, seed: int = demo_content.SEED) -> DemoRecord:
    """The demo record of one customer (pure: the same answer for the same customer and seed)."""
    p = demo_content.profile(spec, seed)
    rng = _rng(seed, spec.name, "record")
    incomplete = spec.index % 7 == 3
    contacts = []
    for n, (name, role, phone, email) in enumerate(p.contacts):
        service = MESSAGING[(spec.index + n) % len(MESSAGING)]
        contact = {"name": name, "role": role, "phones": [phone], "emails": [email],
                   "messaging": {service: messaging_id(service, rng)},
                   "birthday": f"{rng.randint(1960, 1995)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                   "preferences": rng.choice(("Prefers calls before 10", "E-mail first, then a call",
                                              "Likes on-site visits", "Replies on messaging only"))}
        if incomplete and n == len(p.contacts) - 1:
            contact.update(phones=[], emails=[])  # a name and a role, and no way to reach them
        contacts.append(contact)
    values: dict[str, Any] = {
        "legal_name": spec.name, "address": p.street, "city": p.city,
        "industry": "" if incomplete else INDUSTRIES[spec.index % len(INDUSTRIES)],
        "size": "" if incomplete else records.SIZES[spec.index % len(records.SIZES)],
        "status": "active",
        "contacts": contacts,
        "terms": {"payment": p.payment_terms, "discount": f"{p.discount}%", "credit_limit": f"EUR {p.credit_limit}",
                  "price_list": f"List {'ABC'[spec.index % 3]} {demo_content.YEARS[-1]}",
                  "renewal_date": f"{demo_content.YEARS[-1] + 1}-{spec.index % 12 + 1:02d}-01"},
        "notes": f"Customer since {p.since}. {rng.choice(demo_content.TOPICS).capitalize()} is the open subject.",
    }
    return DemoRecord(values=values, updated_days_ago=(spec.index * 37) % 240 + 5,
                      last_contact_days_ago=(spec.index * 53) % 200 + 3, incomplete=incomplete)


def _noon(moment: datetime, days_ago: int) -> datetime:
    return datetime.combine(moment.date() - timedelta(days=days_ago), time(12), tzinfo=UTC)


def seed_record(rt: Runtime, session: Session, customer: Customer, spec: demo_content.DemoCustomer,
                authors: list[User], manager: User | None, *, seed: int = demo_content.SEED,
                ctx: AccessContext) -> bool:
    """Give `customer` its demo record and contact log, once; False when it already has a record."""
    existing = session.get(CustomerRecord, customer.id)
    if existing is not None and existing.version > 0:
        return False
    demo = record_for(spec, seed)
    now = utcnow()
    version = records.edit(rt, session, None, customer, demo.values, ctx=ctx)
    record = session.get(CustomerRecord, customer.id)
    assert version is not None and record is not None
    # Backdated as if it had been kept for a while: some records are overdue for their segment.
    record.updated_at = version.at = _noon(now, demo.updated_days_ago)
    rng = _rng(seed, spec.name, "log")
    contacts = [c["name"] for c in demo.values["contacts"]]
    every = LOG_EVERY[Segment(customer.segment)]
    days = demo.last_contact_days_ago
    while days <= 360:
        author = authors[days % len(authors)]
        verification = manager is not None and customer.segment == Segment.VIP and days // every == 2
        entry = records.add_log(
            rt, session, manager if verification else author, customer,
            happened_on=(now - timedelta(days=days)).date(), channel=rng.choice(records.CHANNELS),
            contact=contacts[0] if days == demo.last_contact_days_ago else rng.choice(contacts),
            topic=rng.choice(demo_content.TOPICS).capitalize(),
            result=rng.choice(("Agreed next steps", "Offer requested", "Waiting for their board", "Resolved")),
            next_step=rng.choice(("Send the offer", "Call back in two weeks", "Visit the second site", "")),
            verification=verification, ctx=ctx)
        entry.logged_at = _noon(now, days)
        days += every
    session.flush()
    return True

