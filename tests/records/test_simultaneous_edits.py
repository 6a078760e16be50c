"""Two edits of one customer's record at once (PostgreSQL, where both transactions run side by side)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.support.factories import make_customer
from tests.support.locks import meanwhile
from vault.core.context import AccessContext
from vault.models import Customer, CustomerRecordVersion, Role
from vault.services import records

CLI = AccessContext.cli()


def _city_and_industry_at_once(rt: Any, customer_id: int, version_read: int | None) -> list[object]:
    """One edit sets the city while another, which read the record (`version_read`, None: no record yet)
    before the first committed, sets the industry; how the second ended."""
    outcome: list[object] = []

    def industry() -> None:
        with rt.db.session() as session:
            record = records.record_of(session, customer_id)  # read before the wait
            assert (record.version if record is not None else None) == version_read
            try:
                records.edit(rt, session, None, session.get(Customer, customer_id), {"industry": "Steel"}, ctx=CLI)
                session.commit()
                outcome.append("edited")
            except Exception as exc:
                outcome.append(type(exc).__name__)

    meanwhile(rt, lambda session: records.edit(rt, session, None, session.get(Customer, customer_id),
                                               {"city": "Berlin"}, ctx=CLI), industry)
    return outcome


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_two_edits_at_once_both_stand_one_version_after_the_other(rt: Any, users: Any, db_backend: str) -> None:
    """One edit set the city while another set the industry. The second read the record before the first
    committed, waited for it, then wrote its version under the same number (refused by the database: a
    server error) or, had the number been free, over the first's city. An edit now reads the record locked:
    the second waits, builds on the first, and the record keeps both as versions 2 and 3."""
    owner = users.make("bob", Role.BORROWER)
    with rt.db.session() as session:
        customer_id = make_customer(session, owner_id=owner.id, name="Nordlicht Handel").id
        records.edit(rt, session, None, session.get(Customer, customer_id), {"city": "Hamburg"}, ctx=CLI)
    assert _city_and_industry_at_once(rt, customer_id, 1) == ["edited"]
    with rt.db.session() as session:
        record = records.record_of(session, customer_id)
        assert (record.version, record.city, record.industry) == (3, "Berlin", "Steel")
        assert sorted(session.scalars(select(CustomerRecordVersion.number).where(
            CustomerRecordVersion.customer_id == customer_id))) == [1, 2, 3]


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_two_first_edits_at_once_make_one_record(rt: Any, users: Any, db_backend: str) -> None:
    """A customer made without notes has no record until its first edit. Two first edits at once each found
    none and inserted one: the second was refused by the database (a server error). The second now waits
    for the first's record and builds on it."""
    owner = users.make("bob", Role.BORROWER)
    with rt.db.session() as session:
        customer_id = make_customer(session, owner_id=owner.id, name="Erstkontakt GmbH").id
    assert _city_and_industry_at_once(rt, customer_id, None) == ["edited"]
    with rt.db.session() as session:
        record = records.record_of(session, customer_id)
        assert (record.version, record.city, record.industry) == (2, "Berlin", "Steel")
