"""Contacts revealed are judged by the early warning as files opened are. The new-place warning judged views
only: contacts revealed from an address or a declared place never seen for the person raised nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

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
