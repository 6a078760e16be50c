"""The `[records]` policy section, record keys under master key rotation, and the departure report's view
of the leaver's records on the day of notice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from crypto import Keyring
from tests.support.factories import make_customer
from vault.config.errors import ConfigError
from vault.config.policy_file import RecordSettings, parse_records, to_toml
from vault.config.settings import load_settings
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.models import CustomerRecord, Role, Segment
from vault.services import accounts, departures, keys, records, report

CLI = AccessContext.cli()
CONTACT = {"name": "Ada Quist", "phones": ["+41 44 5550101"]}


@pytest.fixture(params=["sqlite"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize(("raw", "problem"), [
    ({"reveals_vip": -1}, "reveals_vip must be a whole number from 0"),
    ({"cadence_key": 0}, "cadence_key must be a whole number from 1"),
    ({"reveals_per_day": True}, "reveals_per_day"),
    ({"reveal_quota": 3}, "unknown key"),
])
def test_a_bad_records_section_stops_the_start(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_records(raw)


def test_the_records_section_has_the_documented_defaults_and_reads_back() -> None:
    cfg = RecordSettings()
    assert [cfg.reveals(s, owner=False) for s in Segment] == [3, 5, 10]
    assert [cfg.cadence(s) for s in Segment] == [30, 60, 180]
    assert cfg.reveals_per_day == 20 and all(cfg.reveals(s, owner=True) > cfg.reveals(s, owner=False) for s in Segment)
    settings = load_settings({"policy": {"records": {"reveals_key": 7, "cadence_vip": 14}}}, environ={})
    assert settings.records.reveals("key", owner=False) == 7 and settings.records.cadence("vip") == 14
    assert "[records]\nreveals_vip = 3\nreveals_key = 7" in to_toml(settings.policy_sections())


@pytest.fixture
def keyring_path(tmp_path: Any) -> Any:
    """A keyring of this test's own: rotating the shared one would change every other test's keys."""
    path = tmp_path / "own-keyring.json"
    Keyring.create(path)
    return path


def test_record_keys_follow_a_rotation_and_block_dropping_the_old_key(rt: Any, users: Any) -> None:
    owner = users.make("olga", Role.BORROWER)
    with rt.db.session() as session:
        customer = make_customer(session, owner_id=owner.id)
        records.edit(rt, session, None, customer, {"contacts": [CONTACT]}, ctx=CLI)
        customer_id = customer.id
    old = rt.keyring.active_key_id
    assert keys.usage(rt) == {old: 1}
    rt.keyring.rotate()
    assert keys.pending(rt) == 1
    with pytest.raises(ServiceError) as refused:
        keys.drop(rt, old)
    assert refused.value.code == "key_in_use"
    result = keys.rewrap(rt)
    assert keys.pending(rt) == 0 and result.rewrapped == 0
    keys.drop(rt, old)
    with rt.db.session() as session:
        record = session.get(CustomerRecord, customer_id)
        assert record.key_id == rt.keyring.active_key_id != old
        assert records.snapshot(rt, record)["contacts"] == [CONTACT | {
            "role": "", "emails": [], "messaging": {}, "birthday": "", "preferences": ""}]


def test_a_sealed_group_moved_to_another_customer_does_not_open(rt: Any, users: Any) -> None:
    owner = users.make("olga", Role.BORROWER)
    with rt.db.session() as session:
        first, second = make_customer(session, owner_id=owner.id), make_customer(session, owner_id=owner.id)
        for customer in (first, second):
            records.edit(rt, session, None, customer, {"contacts": [CONTACT], "notes": "n"}, ctx=CLI)
        one, two = session.get(CustomerRecord, first.id), session.get(CustomerRecord, second.id)
        two.notes = one.notes  # the same key would still not open it: the customer id is bound
        one.contacts = one.notes  # nor a group sealed as another group
        with pytest.raises(ServiceError, match="does not authenticate"):
            records.snapshot(rt, two)
        with pytest.raises(ServiceError, match="does not authenticate"):
            records.snapshot(rt, one)
        session.rollback()


def test_the_departure_report_shows_the_leaver_s_records_on_the_day_of_notice(rt: Any, users: Any,
                                                                             clock: Any) -> None:
    sam = users.make("sam", Role.BORROWER)
    users.make("sue", Role.BORROWER)
    adm = users.make("adm", Role.ADMIN)
    with rt.db.session() as session:
        customer = make_customer(session, owner_id=sam.id, name="Helvetia Medtech AG", segment=Segment.KEY)
        # 3 of 6 facts (20), one contact reachable of two (15), no contact logged (0): 35.
        records.edit(rt, session, None, customer, {
            "legal_name": "Helvetia Medtech AG", "city": "Basel", "status": "active",
            "contacts": [CONTACT, {"name": "Bo Lind"}]}, ctx=CLI)
        records.reveal(rt, session, accounts.get_user(session, "sam"), customer, reason="Copying all", place="Home",
                       ctx=CLI)
        departures.start_departure(rt, session, session.get(type(adm), adm.id), accounts.get_user(session, "sam"),
                                   last_day=clock.now().date() + timedelta(days=20),
                                   successor=accounts.get_user(session, "sue"), note="", ctx=CLI)
        customer_id = customer.id
    clock.advance(timedelta(days=70))  # the successor completes the record later: the report keeps the notice day
    with rt.db.session() as session:
        records.edit(rt, session, None, session.get(type(customer), customer_id),
                     {"industry": "Medical devices", "size": "51-250", "address": "Rheinweg 1"}, ctx=CLI)
        built = report.build_report(rt, session, accounts.get_user(session, "sam"))
    (line,) = [c for c in built.customers if c.customer_id == customer_id]
    assert (line.completeness, line.overdue_days, line.revealed) == (35, 0, 1)
    row = next(r for r in report.csv_rows(built) if r.get("customer_id") == customer_id)
    assert (row["completeness"], row["revealed"]) == (35, 1)
