"""Look-ups by name are limited per person and per local day, not only per query: five names a query and no
limit on queries let two hundred queries walk the directory. A query that finds nothing counts (probing with
misses is the attack), one too short does not; people on notice have a lower cap; the refusal is a recorded
`customer:lookup` denied with `lookup_cap_reached`; the page and the API say how many are left today.

The cast is `org`'s: Eva and Bob sell in Hana's team, Bea sells on her own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.conftest import assert_error, events
from tests.conftest import login
from vault.core.context import AccessContext
from vault.models import Alert, CustomerAccess
from vault.services import accounts, departures

ALL_DAY = {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": 0, "end": 24}
CAP_3 = {"policy": {"working_hours": ALL_DAY, "lookups": {"per_day": 3, "notice_per_day": 1}}}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", CAP_3)


def _look_up(api: Any, query: str, user: str = "bob") -> Any:
    return api.get(f"/api/v1/customers/lookup?q={query}", user)


def _accesses(rt: Any, user_id: int) -> set[tuple[str, int]]:
    with rt.db.session() as session:
        return {(a.kind, a.customer_id) for a in session.scalars(
            select(CustomerAccess).where(CustomerAccess.user_id == user_id))}


def _user_id(rt: Any, username: str) -> int:
    with rt.db.session() as session:
        return accounts.get_user(session, username).id


def test_misses_count_slips_do_not_and_the_look_up_past_the_cap_is_refused_and_recorded(
        api: Any, rt: Any, org: dict[str, int]) -> None:
    found = _look_up(api, "iberica")
    assert found.status_code == 200
    body = found.get_json()
    assert [c["name"] for c in body["customers"]] == ["Ibérica Logística"]
    assert (body["remaining_today"], body["daily_cap"]) == (2, 3)
    # A miss still spends one (probing with misses tells what is not there, and then what is).
    missed = _look_up(api, "zzzz nobody").get_json()
    assert (missed["customers"], missed["remaining_today"]) == ([], 1)
    # A slip (too short) is refused as before and costs nothing.
    assert_error(_look_up(api, "adr"), 400, "query_too_short")
    assert _look_up(api, "carl direct").get_json()["remaining_today"] == 0
    # The fourth: refused, recorded under the action with the query tried, and nothing looked for.
    refused = assert_error(_look_up(api, "adriatic"), 403, "lookup_cap_reached")
    assert refused["error"] == "You have no look-ups left today."
    allowed = [e for e in events(rt, "customer:lookup") if e.actor_name == "bob"]
    assert [json.loads(e.detail)["today"] for e in allowed] == [1, 2, 3]
    [denied] = [e for e in events(rt, "customer:lookup", "denied") if e.actor_name == "bob"]
    assert (denied.reason_code, denied.reason_text) == ("lookup_cap_reached", "adriatic")
    assert ("lookup", org["bea"]) not in _accesses(rt, _user_id(rt, "bob"))
    assert_error(api.get(f"/api/v1/customers/{org['bea']}", "bob"), 404, "not_found")
    # Still refused, whatever the query; a colleague's cap is their own.
    assert_error(_look_up(api, "iberica"), 403, "lookup_cap_reached")
    assert _look_up(api, "adriatic", "eva").get_json()["remaining_today"] == 2


@pytest.mark.parametrize("settings_overrides", [{"policy": {
    "working_hours": {**ALL_DAY, "timezone": "Asia/Shanghai"}, "lookups": {"per_day": 1}}}], indirect=True)
def test_the_cap_is_counted_per_local_day_of_the_company_s_time_zone(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    """In Shanghai a day counted in UTC would start at 08:00, in the middle of the working day, and give a
    person two days' look-ups in one."""
    clock.freeze(datetime(2026, 12, 9, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai
    api.tokens.clear()
    assert _look_up(api, "iberica").status_code == 200
    clock.freeze(datetime(2026, 12, 9, 9, 0, tzinfo=UTC))  # 17:00 the same local day, a new day in UTC
    api.tokens.clear()
    assert_error(_look_up(api, "iberica"), 403, "lookup_cap_reached")
    clock.freeze(datetime(2026, 12, 9, 16, 5, tzinfo=UTC))  # 00:05 the next local day
    api.tokens.clear()
    assert _look_up(api, "iberica").get_json()["remaining_today"] == 0


def test_a_person_on_notice_has_the_lower_cap(api: Any, rt: Any, org: dict[str, int]) -> None:
    with rt.db.session() as session:
        eva = accounts.get_user(session, "eva")
        departures.start_departure(rt, session, None, eva, last_day=departures.today(rt.settings) + timedelta(days=10),
                                   successor=None, ctx=AccessContext.cli())
    body = _look_up(api, "nordlicht", "eva").get_json()
    assert (body["remaining_today"], body["daily_cap"]) == (0, 1)
    assert_error(_look_up(api, "adriatic", "eva"), 403, "lookup_cap_reached")
    # Bob, not leaving, keeps everyone's cap.
    assert _look_up(api, "adriatic", "bob").get_json()["daily_cap"] == 3


@pytest.mark.parametrize("settings_overrides", [{"policy": {"lookups": {"per_day": 2, "notice_per_day": 50}}}],
                         indirect=True)
def test_the_notice_cap_is_never_higher_than_everyone_s(api: Any, rt: Any, org: dict[str, int]) -> None:
    with rt.db.session() as session:
        bob = accounts.get_user(session, "bob")
        departures.start_departure(rt, session, None, bob, last_day=departures.today(rt.settings) + timedelta(days=10),
                                   successor=None, ctx=AccessContext.cli())
    assert _look_up(api, "iberica").get_json()["daily_cap"] == 2


@pytest.mark.parametrize("settings_overrides", [{"policy": {"lookups": {"per_day": 0}}}], indirect=True)
def test_a_cap_of_zero_allows_no_look_up(app: Any, api: Any, rt: Any, org: dict[str, int]) -> None:
    assert_error(_look_up(api, "iberica"), 403, "lookup_cap_reached")
    assert [e for e in events(rt, "customer:lookup") if e.actor_name == "bob"] == []
    client = app.test_client()
    login(client, "bob")
    assert "Look-ups are closed to you." in client.get("/customers/lookup").get_data(as_text=True)


def test_the_page_says_how_many_are_left_and_refuses_plainly_in_every_language(
        app: Any, api: Any, rt: Any, org: dict[str, int]) -> None:
    client = app.test_client()
    login(client, "bob")
    page = client.get("/customers/lookup").get_data(as_text=True)
    assert "You have 3 look-ups left today, of 3 a day." in page
    found = client.get("/customers/lookup?q=zzzz nobody")
    assert found.status_code == 200
    assert "You have 2 look-ups left today, of 3 a day." in found.get_data(as_text=True)
    client.get("/customers/lookup?q=iberica")
    last = client.get("/customers/lookup?q=nordlicht").get_data(as_text=True)
    assert "You have no look-ups left today; they start again tomorrow." in last
    refused = client.get("/customers/lookup?q=adriatic")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403
    assert "You have used all your look-ups for today" in html and "You have no look-ups left today." in html
    assert "Reason code: lookup_cap_reached" in html
    assert 'href="/search/"' in html
    pages = {language: client.get("/customers/lookup?q=adriatic", headers={"Accept-Language": language})
             for language in ("zh-CN", "ru")}
    for language, answer in pages.items():
        text = answer.get_data(as_text=True)
        assert answer.status_code == 403 and "lookup_cap_reached" in text, language
        assert "You have used all your look-ups" not in text and "You have no look-ups left" not in text, language
    denied = [e for e in events(rt, "customer:lookup", "denied") if e.actor_name == "bob"]
    assert [e.reason_code for e in denied] == ["lookup_cap_reached"] * 3


@pytest.mark.parametrize("settings_overrides", [{"policy": {
    "working_hours": ALL_DAY, "alerts": {"directory_per_hour": 3, "new_place": False},
    "lookups": {"per_day": 5}}}], indirect=True)
def test_look_ups_under_the_cap_still_raise_the_directory_sweep(api: Any, rt: Any, users: Any) -> None:
    names = [f"Sweep Target {n:02d}" for n in range(6)]
    for name in names:
        api.customer(name, owner="bea", shared=False)
    for name in names[:5]:
        assert len(_look_up(api, name).get_json()["customers"]) == 1
    assert_error(_look_up(api, names[5]), 403, "lookup_cap_reached")
    with rt.db.session() as session:
        [sweep] = session.scalars(select(Alert).where(Alert.rule == "directory_sweep"))
        assert sweep.user.username == "bob"
        assert json.loads(sweep.evidence_json)["customers_in_hour"] == 5  # every one looked up, none refused



def test_a_query_too_short_says_how_many_are_left_without_spending_one(
        app: Any, api: Any, rt: Any, org: dict[str, int]) -> None:
    """The slip's answer carries the figures a success carries, so a client (or the person) knows where they
    stand before typing again; it spends nothing and records nothing, on the API and the page alike."""
    assert _look_up(api, "iberica").get_json()["remaining_today"] == 2
    slip = assert_error(_look_up(api, "adr"), 400, "query_too_short")
    assert (slip["remaining_today"], slip["daily_cap"]) == (2, 3)
    client = app.test_client()
    login(client, "bob")
    page = client.get("/customers/lookup?q=ad")
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert "Type at least 4 letters of the customer&#39;s name." in html
    assert "You have 2 look-ups left today, of 3 a day." in html
    # Nothing was spent by either slip, and nothing recorded of them.
    assert _look_up(api, "nordlicht").get_json()["remaining_today"] == 1
    allowed = [json.loads(e.detail) for e in events(rt, "customer:lookup") if e.actor_name == "bob"]
    assert [(d["query"], d["today"]) for d in allowed] == [("iberica", 1), ("nordlicht", 2)]
    assert [e for e in events(rt, "customer:lookup", "denied") if e.actor_name == "bob"] == []


def test_a_query_too_short_past_the_cap_says_none_are_left(api: Any, rt: Any, org: dict[str, int]) -> None:
    """Once the day's are spent, the slip says so with the same figures, and is still not a recorded
    refusal (the cap refuses only a query that would be run)."""
    for query in ("iberica", "nordlicht", "adriatic"):
        assert _look_up(api, query).status_code == 200
    slip = assert_error(_look_up(api, "ib"), 400, "query_too_short")
    assert (slip["remaining_today"], slip["daily_cap"]) == (0, 3)
    assert [e for e in events(rt, "customer:lookup", "denied") if e.actor_name == "bob"] == []
