"""The demo company's records: sealed in the database (raw SQLite bytes, a pg_dump, log files), masked on
every page and answer until revealed, and upkeep figures that match a computation by hand.

The demo is seeded without its files and without its work in progress (`demo.seed(files=False, work=False)`):
the records are what is tested, as their owners keep them before anyone leaves.
"""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.conftest import login
from vault.core.context import AccessContext
from vault.models import Customer
from vault.services import accounts, demo, demo_content, demo_records, records, upkeep

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def secrets_of_demo() -> list[str]:
    """Every phone number, e-mail address and messaging ID of the demo's contacts."""
    found = []
    for spec in demo_content.CUSTOMERS:
        for contact in demo_records.record_for(spec).values["contacts"]:
            found += [*contact["phones"], *contact["emails"], *contact["messaging"].values()]
    return found


def terms_of_demo() -> list[str]:
    """What the demo once wrote into the clear customer notes and now seals: each customer's payment terms
    and the old notes sentence (street, city, since, payment). The street and city alone are clear record
    facts by design (`vault.models.records`), so they are not searched for by themselves."""
    found = []
    for spec in demo_content.CUSTOMERS:
        p = demo_content.profile(spec)
        found += [p.payment_terms, f"{p.street}, {p.city}. Customer since {p.since}.", f"Payment: {p.payment_terms}"]
    return sorted(set(found))


def _leaks(blob: bytes, values: list[str]) -> list[str]:
    return [v for v in values if v.encode("utf-8") in blob or v.encode("utf-16-le") in blob]


@pytest.fixture
def company(rt: Any, clock: Any) -> Any:
    clock.freeze(NOW)
    demo.seed(rt, files=False, work=False)
    return rt


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_upkeep_figures_match_the_hand_computed_ones(company: Any) -> None:
    """By hand, from `demo_records.record_for` (updated = (37 i) mod 240 + 5 days ago, last contact
    = (53 i) mod 200 + 3 days ago, every 7th from index 3 incomplete) and the rules in `upkeep`:

    - 0 Nordlicht (VIP, 30 days): updated 5 days ago, not overdue; 6/6 facts → 40, 3/3 contacts → 30,
      last contact 3 days ≤ 30 → 30: 100.
    - 2 Castellano (key, 60): updated 79 days ago → overdue by 19; contact 109 days: within 2 × 60 → 15: 85.
    - 3 Meridian (key): updated 116 → overdue by 56; industry and size empty → 40 × 4/6 = 26.67; 2 of 3
      contacts reachable → 20; contact 162 days > 120 → 0: 46.67 → 46.
    - 9 Sable Ridge (VIP): updated 98 → overdue by 68; contact 80 days > 60 → 0: 70.
    - 17 Müller (key): updated 154 → overdue by 94; incomplete: 26.67 + 20, contact 104 ≤ 120 → 15: 61.
    """
    expected = {
        "Nordlicht Logistik GmbH": (0, 100, ()),
        "Castellano Foods S.L.": (19, 85, ("contact log",)),
        "Meridian Dental Group": (56, 46, ("industry", "size", "reachable contacts", "contact log")),
        "Sable Ridge Hotels": (68, 70, ("contact log",)),
        "Müller & Söhne Maschinenbau": (94, 61, ("industry", "size", "reachable contacts", "contact log")),
    }
    values = secrets_of_demo()
    assert len(values) == 314 and len(set(values)) == len(values)
    with company.db.session() as session:
        # The thirty customers the figures were worked out for (the demo's Chinese and Russian customers,
        # added after them, have records of their own).
        first = session.scalars(select(Customer).order_by(Customer.id).limit(30))
        states = [upkeep.record_state(company, session, c) for c in first]
        assert len(states) == 30
        assert sum(s.overdue for s in states) == 18
        assert sum(s.completeness < 70 for s in states) == 4
        for name, figures in expected.items():
            customer = session.scalar(select(Customer).where(Customer.name == name))
            state = upkeep.record_state(company, session, customer)
            assert (state.overdue_days, state.completeness, state.missing) == figures, name
        # Eva owns Castellano (index 2), Riverside (12) and Müller (17, co-owned VIP partners aside):
        # overdue by 19, 29 and 94 days; and the Russian customer added after the thirty, 162 days late;
        # most overdue first.
        eva = accounts.get_user(session, "eva")
        assert [(s.name, s.overdue_days) for s in upkeep.overdue_customers(company, session, eva)] == [
            ("ООО «Северный ветер»", 162), ("Müller & Söhne Maschinenbau", 94), ("Riverside Print Co.", 29),
            ("Castellano Foods S.L.", 19)]
        # Hana manages Eva, Sam and Raj: their overdue records as well as her own (she owns none).
        hana = accounts.get_user(session, "hana")
        assert len(upkeep.overdue_customers(company, session, hana)) == 10
        weakest = upkeep.team_completeness(company, session, hana)[0]
        assert (weakest.name, weakest.completeness) == ("Meridian Dental Group", 46)


def test_no_contact_value_is_in_the_database_or_the_logs(company: Any, database_url: str, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    values = secrets_of_demo() + terms_of_demo()
    log_file = tmp_path / "vault.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with company.db.session() as session:
            customer = session.scalar(select(Customer).where(Customer.name == "Nordlicht Logistik GmbH"))
            owner = customer.owner
            shown = records.reveal(company, session, owner, customer, reason="Call about the order", place="Office",
                                   ctx=AccessContext.cli())
            assert shown.record.contacts[0]["phones"][0] in values
            assert shown.record.terms["payment"] in values  # the terms searched for are the stored ones
            records.edit(company, session, owner, customer, {"contacts": shown.record.contacts[::-1]},
                         ctx=AccessContext.cli())
            session.commit()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()
    assert not _leaks(log_file.read_bytes(), values)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        files = [Path(url.database)] + [Path(url.database + s) for s in ("-wal", "-journal")]
        company.db.engine.dispose()
        blob = b"".join(f.read_bytes() for f in files if f.exists())
    else:
        pg_dump = request.getfixturevalue("postgres_cluster").bindir / "pg_dump"
        dump = subprocess.run([str(pg_dump), "--host", url.query["host"], "--username", url.username,
                               "--no-password", url.database], capture_output=True, check=True, timeout=120)
        blob = dump.stdout
        assert b"customer_records" in blob
    assert len(blob) > 100_000
    assert not _leaks(blob, values)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_masked_on_every_page_until_revealed(company: Any, app: Any, client: Any) -> None:
    values = secrets_of_demo()
    with company.db.session() as session:
        ids = [c.id for c in session.scalars(select(Customer).where(Customer.owner_id == accounts.get_user(
            session, "eva").id))]
    token = login(client, "eva", demo.DEMO_PASSWORD)
    pages = [client.get("/customers/"), client.get("/customers/?mine=1")]
    pages += [client.get(f"/customers/{i}") for i in ids]
    pages += [client.get(f"/customers/{i}/history") for i in ids]
    for page in pages:
        assert page.status_code == 200
        assert not _leaks(page.get_data(), values)
    revealed = client.post(f"/customers/{ids[0]}/reveal", data={"csrf_token": token, "rv-reason": "Visit on Friday",
                                                              "rv-place": "Office"})
    assert revealed.status_code == 200 and _leaks(revealed.get_data(), values)


def test_demo_e_mail_addresses_take_accents_off_rather_than_letters():
    """García's address is garcia@…, not garca@…: every demo address is plain ASCII and keeps each letter."""
    assert demo_content._ascii("Chiara.García") == "chiara.garcia"
    assert demo_content._ascii("Müller") == "muller"
    for customer in demo_content.CUSTOMERS:
        for name, _role, _phone, address in demo_content.profile(customer).contacts:
            local, _, domain = address.partition("@")
            assert address.isascii() and domain.endswith(".example"), address
            if not customer.country:
                assert local == demo_content._ascii(name.replace(" ", ".")), (name, address)
