"""Letters to customers: the departure tests' small sales team, a real SMTP server, and customers whose
records name main contacts writing in English, Chinese and Russian."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.departure.conftest import OFFICE, TRUSTED, Company, evening_policy
from tests.mail.smtpd import SmtpServer
from vault.models import Customer, User
from vault.runtime import Runtime
from vault.services import records

BASE_URL = "https://vault.example.com"
COMPANY = "Nordwind Trading"
# What no letter and no link page may show: the record's other contents.
SECRET_NAME = "Zygmunt Quarterly"
SECRET_TERM = "discount 17.5 percent"
CONTACTS = [
    {"name": "Jana Novak", "emails": ["jana@customer.example"], "language": "en", "main": True},
    {"name": "Li Wei", "emails": ["li.wei@customer.example"], "language": "zh_Hans", "main": True},
    {"name": "Olga Smirnova", "emails": ["olga@customer.example"], "language": "ru", "main": True},
    {"name": SECRET_NAME, "emails": ["zq@customer.example"], "phones": ["+49 30 5550199"]},
]
LINK = re.compile(r"https://vault\.example\.com(/letter/[A-Za-z0-9._-]+)")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(smtp: SmtpServer) -> dict[str, Any]:
    return {"trusted_places": TRUSTED, "policy": evening_policy(), "smtp_url": smtp.url(timeout="5"),
            "mail_from": "vault@example.com", "base_url": BASE_URL, "company_name": COMPANY,
            "letter_link_days": 14}


@pytest.fixture
def company(rt: Runtime, users: Any) -> Company:
    team = Company(rt, users)
    with rt.db.session() as session:
        for name in ("sue", "tom"):
            session.get(User, team.ids[name]).email = f"{name}@nordwind.example"
    return team


def write_contacts(rt: Runtime, customer_id: int, contacts: list[dict[str, Any]] | None = None) -> None:
    with rt.db.session() as session:
        records.edit(rt, session, None, session.get(Customer, customer_id),
                     {"contacts": contacts if contacts is not None else CONTACTS,
                      "terms": {"payment": SECRET_TERM}}, ctx=OFFICE)


def links(smtp: SmtpServer) -> dict[str, str]:
    """Recipient → the path of the link in the mail they received."""
    found = {}
    for message in smtp.received:
        match = LINK.search(message.text)
        if match:  # the staff's own notices (a handover) have none
            found[message.recipients[0]] = match.group(1)
    return found
