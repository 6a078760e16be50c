"""Contacts revealed are judged by the early warning as files opened are. The new-place warning judged views
only: contacts revealed from an address or a declared place never seen for the person raised nothing. And
before notice, the contacts of colleagues' customers, reached one look-up at a time and revealed a few a
day, raised nothing unless they amounted to a directory sweep or were revealed at night."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.test_review_notice_deciders import give_notice
from vault.config.policy_file import AlertSettings
from vault.models import Alert, Severity

OFFICE_HOURS = {"policy": {"working_hours": {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri"],
                                             "start": "08:00", "end": "18:00"}}}
OFFICE = "10.0.0.5"
WEDNESDAY = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
THURSDAY = datetime(2026, 12, 10, 10, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 12, 11, 10, 0, tzinfo=UTC)


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", OFFICE_HOURS)


def _alerts(rt: Any, rule: str | None = None) -> list[Alert]:
    query = select(Alert).order_by(Alert.id)
    if rule is not None:
        query = query.where(Alert.rule == rule)
    with rt.db.session() as session:
        return list(session.scalars(query))


def _at(api: Any, clock: Any, moment: datetime) -> None:
    clock.freeze(moment)
    api.tokens.clear()


def _reveal(api: Any, customer: int, user: str = "bob", *, address: str = OFFICE, place: str = "Office") -> None:
    response = api.post(f"/api/v1/customers/{customer}/reveal", user, environ_base={"REMOTE_ADDR": address},
                        json={"reason": "Calling them about the renewal", "place": place})
    assert response.status_code == 200, response.get_json()


def _look_up(api: Any, name: str, user: str = "bob") -> int:
    found = api.get(f"/api/v1/customers/lookup?q={name}", user, environ_base={"REMOTE_ADDR": OFFICE})
    assert found.status_code == 200, found.get_json()
    [customer] = found.get_json()["customers"]
    return int(customer["id"])


# -- new place -------------------------------------------------------------------------------------------


def test_contacts_revealed_from_a_place_never_seen_for_the_person_raise_the_new_place_warning(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    customer = org["bob"]
    _at(api, clock, WEDNESDAY)
    _reveal(api, customer)  # the first reveal: no baseline, says nothing
    _reveal(api, customer, place=" office ")  # the same place, written another way
    assert _alerts(rt) == []
    _reveal(api, customer, address="203.0.113.9", place="Hotel Lisboa")
    [alert] = _alerts(rt)
    assert (alert.rule, alert.severity) == ("new_place", Severity.MEDIUM)
    assert alert.evidence["customers"] == [customer]
    assert alert.evidence["places"] == ["address: 203.0.113.9", "declared place: Hotel Lisboa"]
    assert alert.summary == ("Contacts revealed from a place not seen before for this person "
                             "(address: 203.0.113.9; declared place: Hotel Lisboa).")


def test_places_seen_in_views_count_for_reveals_and_places_seen_in_reveals_count_for_views(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    customer = api.customer("Shared Books", owner="bob")
    document = api.upload(customer, grade=1)
    _at(api, clock, WEDNESDAY)
    opened = api.open_view(document, "bob", environ_base={"REMOTE_ADDR": OFFICE}, json={"place": "Office"})
    assert opened.status_code == 201, opened.get_json()
    _reveal(api, customer)  # from where the person opened files: nothing new
    assert _alerts(rt) == []
    _at(api, clock, THURSDAY)
    _reveal(api, customer, address="198.51.100.4", place="Home")  # from a place of neither
    [alert] = _alerts(rt)
    assert alert.rule == "new_place" and alert.window_key == "2026-12-10"
    _at(api, clock, FRIDAY)
    # The next day, a file opened from where contacts were revealed is not from a new place.
    opened = api.open_view(document, "bob", environ_base={"REMOTE_ADDR": "198.51.100.4"}, json={"place": "home"})
    assert opened.status_code == 201, opened.get_json()
    _reveal(api, customer, address="198.51.100.4", place="Home")
    assert [a.id for a in _alerts(rt)] == [alert.id]
    # A file opened from a place new to both still is.
    opened = api.open_view(document, "bob", environ_base={"REMOTE_ADDR": "192.0.2.77"}, json={"place": "Office"})
    assert opened.status_code == 201, opened.get_json()
    [_, fresh] = _alerts(rt)
    assert fresh.rule == "new_place" and fresh.evidence["places"] == ["address: 192.0.2.77"]


NO_NEW_PLACE = {"policy": {**OFFICE_HOURS["policy"], "alerts": {"new_place": False}}}


@pytest.mark.parametrize("settings_overrides", [NO_NEW_PLACE], indirect=True)
def test_a_reveal_from_a_new_place_raises_nothing_with_the_rule_switched_off(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    _at(api, clock, WEDNESDAY)
    _reveal(api, org["bob"])
    _reveal(api, org["bob"], address="203.0.113.9", place="Hotel Lisboa")
    assert _alerts(rt) == []


# -- outside one's own book, before notice ------------------------------------------------------------------


def test_everyday_reveals_in_ones_own_book_from_a_known_place_raise_nothing(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    book = [org["bob"], *(api.customer(f"Own Book {i}", owner="bob", shared=False) for i in range(7))]
    assert len(book) > AlertSettings().reveals_outside_book
    for day in (WEDNESDAY, THURSDAY, FRIDAY):
        _at(api, clock, day)
        for customer in book:
            _reveal(api, customer)
    assert _alerts(rt) == []


COLLEAGUES = ("Kestrel Freight", "Osprey Metals", "Heron Textiles", "Falcon Optics", "Merlin Paper",
              "Condor Tools", "Harrier Foods")


def test_revealing_colleagues_customers_a_few_a_day_before_notice_raises_a_warning(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    for name in COLLEAGUES:
        api.customer(name, owner="eva", shared=False)
    limit = AlertSettings().reveals_outside_book
    assert limit == 5 and AlertSettings().reveals_outside_book_days == 7
    revealed: list[int] = []
    for day, names in ((WEDNESDAY, COLLEAGUES[:3]), (THURSDAY, COLLEAGUES[3:5])):
        _at(api, clock, day)
        for name in names:
            customer = _look_up(api, name.split()[0])
            _reveal(api, customer)
            _reveal(api, org["bob"])  # and his own work in between, which is not counted
            revealed.append(customer)
    assert _alerts(rt) == []  # five, not more than five
    _at(api, clock, FRIDAY)
    customer = _look_up(api, "Condor")
    _reveal(api, customer)
    revealed.append(customer)
    [alert] = _alerts(rt)
    assert (alert.rule, alert.severity, alert.window_key) == ("outside_book_reveals", Severity.MEDIUM, "2026-12-11")
    assert sorted(alert.evidence["customers"]) == sorted(revealed) and org["bob"] not in alert.evidence["customers"]
    assert alert.evidence["value"] == 6 and alert.evidence["threshold"] == limit
    assert alert.summary == "Bob revealed the contacts of 6 customers outside their own book within 7 days " \
                            "(more than 5)."
    # The same customer again adds to the day's alert, it raises no other.
    _reveal(api, customer)
    assert [(a.id, a.occurrences) for a in _alerts(rt)] == [(alert.id, 2)]


WINDOW = {"policy": {**OFFICE_HOURS["policy"], "alerts": {"reveals_outside_book": 2, "reveals_outside_book_days": 2}}}


@pytest.mark.parametrize("settings_overrides", [WINDOW], indirect=True)
def test_reveals_outside_the_book_are_counted_over_the_policys_rolling_window(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    for name in COLLEAGUES[:4]:
        api.customer(name, owner="eva", shared=False)
    _at(api, clock, datetime(2026, 12, 7, 10, 0, tzinfo=UTC))  # a Monday
    for name in COLLEAGUES[:2]:
        _reveal(api, _look_up(api, name.split()[0]))
    _at(api, clock, datetime(2026, 12, 9, 10, 30, tzinfo=UTC))  # two days and a half later: out of the window
    _reveal(api, _look_up(api, "Falcon"))
    assert _alerts(rt) == []
    _reveal(api, _look_up(api, "Heron"))
    _at(api, clock, datetime(2026, 12, 10, 9, 0, tzinfo=UTC))  # within two days of the two before
    _reveal(api, _look_up(api, "Iberica"))
    [alert] = _alerts(rt)
    assert alert.rule == "outside_book_reveals" and alert.evidence["value"] == 3
    assert alert.summary == "Bob revealed the contacts of 3 customers outside their own book within 2 days " \
                            "(more than 2)."


SWITCHED_OFF = {"policy": {**OFFICE_HOURS["policy"], "alerts": {"reveals_outside_book": 0}}}


@pytest.mark.parametrize("settings_overrides", [SWITCHED_OFF], indirect=True)
def test_reveals_outside_the_book_raise_nothing_with_the_rule_switched_off(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    for name in COLLEAGUES:
        api.customer(name, owner="eva", shared=False)
    _at(api, clock, WEDNESDAY)
    for name in COLLEAGUES:
        _reveal(api, _look_up(api, name.split()[0]))
    assert _alerts(rt) == []


# Seven look-ups in a day on notice: past the default notice cap (5), which this test is not about.
NOTICE_LOOKUPS = {"policy": {**OFFICE_HOURS["policy"], "lookups": {"notice_per_day": len(COLLEAGUES)}}}


@pytest.mark.parametrize("settings_overrides", [NOTICE_LOOKUPS], indirect=True)
def test_on_notice_the_stronger_outside_book_warning_is_raised_alone(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    for name in COLLEAGUES:
        api.customer(name, owner="eva", shared=False)
    _at(api, clock, WEDNESDAY)
    give_notice(rt, "bob")
    api.tokens.clear()
    for name in COLLEAGUES:
        _reveal(api, _look_up(api, name.split()[0]))
    assert {a.rule for a in _alerts(rt)} == {"notice", "outside_book"}
