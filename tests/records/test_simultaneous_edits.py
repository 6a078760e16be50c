"""Two edits of one customer's record at once (PostgreSQL, where both transactions run side by side)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.records.scenes import nordlicht
from tests.support.factories import make_customer
from tests.support.locks import interleaved, meanwhile
from vault.core.context import AccessContext
from vault.db.locking import locked
from vault.models import Customer, CustomerRecord, CustomerRecordVersion, Role
from vault.services import accounts, records

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


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("settings_overrides", [{"audit_shards": 1}])
def test_a_page_edit_meeting_an_api_edit_waits_instead_of_deadlocking(client: Any, rt: Any, users: Any,
                                                                      db_backend: str,
                                                                      settings_overrides: dict[str, Any]) -> None:
    """Bob was changing the record through the API (the record locked, his record of it not yet written)
    when Hana saved the page's form. The page recorded its read of the customer first, holding the head of
    its chain until the commit, then waited for the record; Bob's record waited for that head, and the
    database ended one of them (a 503). The page now locks the record before it records anything: it waits
    for Bob's change and shows Hana's form again over it (409)."""
    cid = nordlicht(rt, users, {"city": "Hamburg"}, hana_co_owns=True)["customer"]
    token = login(client, "hana")
    answers: list[Any] = []
    interleaved(rt, lambda session: locked(session, CustomerRecord, cid),
                lambda: answers.append(client.post(f"/customers/{cid}/record", data={
                    "csrf_token": token, "rec-city": "Lübeck", "rec-version": "1"})),
                lambda session, _record: records.edit(rt, session, accounts.get_user(session, "bob"),
                                                      session.get(Customer, cid), {"city": "Kiel"}, ctx=CLI))
    assert answers[0].status_code == 409, answers[0].get_data()[:300]
    with rt.db.session() as session:
        assert records.record_of(session, cid).city == "Kiel"
