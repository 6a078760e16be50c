"""Contacts revealed outside the working hours raise the outside-hours warning, as files opened then do:
a night spent revealing customers' contacts was seen by no rule, which judged views of files only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from vault.models import Alert, Severity

WHY = {"reason": "Calling them about the renewal", "place": "Home"}
OFFICE_HOURS = {"policy": {"working_hours": {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri"],
                                             "start": "08:00", "end": "18:00"}}}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", OFFICE_HOURS)


def _alerts(rt: Any) -> list[Alert]:
    with rt.db.session() as session:
        return list(session.scalars(select(Alert).where(Alert.rule == "outside_hours")))


def test_a_reveal_at_night_raises_the_outside_hours_warning_and_one_at_noon_does_not(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    customer = org["bob"]
    clock.freeze(datetime(2026, 12, 9, 12, 0, tzinfo=UTC))  # a Wednesday, noon
    assert api.post(f"/api/v1/customers/{customer}/reveal", "bob", json=WHY).status_code == 200
    assert _alerts(rt) == []
    clock.freeze(datetime(2026, 12, 12, 23, 5, tzinfo=UTC))  # a Saturday night
    api.tokens.clear()
    assert api.post(f"/api/v1/customers/{customer}/reveal", "bob", json=WHY).status_code == 200
    [alert] = _alerts(rt)
    assert alert.severity == Severity.MEDIUM and alert.evidence["customers"] == [customer]
    assert alert.summary == "Contacts revealed outside working hours (Saturday 23:05)."


SWEEP = {"policy": {"working_hours": OFFICE_HOURS["policy"]["working_hours"],
                    "alerts": {"directory_per_hour": 0, "directory_per_day": 10}}}


@pytest.mark.parametrize("settings_overrides", [SWEEP], indirect=True)
def test_a_directory_sweep_spread_either_side_of_midnight_is_counted_over_24_hours(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    """Counted from midnight, six records before it and six after stayed under a limit of ten twice."""
    books = [api.customer(f"Book {i:02d}", owner="bob", shared=False) for i in range(12)]
    clock.freeze(datetime(2026, 12, 9, 23, 30, tzinfo=UTC))
    api.tokens.clear()
    for customer in books[:6]:
        assert api.get(f"/api/v1/customers/{customer}", "bob").status_code == 200
    clock.freeze(datetime(2026, 12, 10, 0, 30, tzinfo=UTC))
    api.tokens.clear()
    for customer in books[6:]:
        assert api.get(f"/api/v1/customers/{customer}", "bob").status_code == 200
    with rt.db.session() as session:
        [sweep] = session.scalars(select(Alert).where(Alert.rule == "directory_sweep"))
    assert sweep.summary == "Bob read or looked up 12 different customers within 24 hours (more than 10)."
