"""Departures through the API, as an HR system uses it: notice, list, show, report, withdraw, complete."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.api.conftest import assert_error, events
from vault.core.context import AccessContext
from vault.models import Customer, Role, User
from vault.services import accounts, departures


def _day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


def _owner(rt, customer_id: int) -> int:
    with rt.db.session() as session:
        return session.get(Customer, customer_id).owner_id


def _status(rt, username: str) -> str:
    with rt.db.session() as session:
        return str(session.scalar(select(User.status).where(User.username == username)))


def test_an_hr_system_gives_notice_reads_it_and_withdraws_it(api, rt, cast):
    customer = api.customer("Acme", owner="bob")
    started = api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(14),
                                                           "successor": "bea", "notice_date": _day(0)})
    assert started.status_code == 201, started.get_json()
    departure = started.get_json()
    assert departure["person"]["username"] == "bob" and departure["status"] == "notice"
    assert departure["last_day"] == _day(14) and departure["successor"]["username"] == "bea"
    assert _status(rt, "bob") == "departing" and _owner(rt, customer) == cast["bea"].id
    listed = api.get("/api/v1/departures", "aud").get_json()["departures"]
    assert [d["id"] for d in listed] == [departure["id"]]
    shown = api.get(f"/api/v1/departures/{departure['id']}", "aud").get_json()
    [entry] = shown["customers"]
    assert entry == {"item_id": entry["item_id"], "customer_id": customer, "to_user_id": cast["bea"].id,
                     "key": False, "settled": True, "moved": False}
    report = api.get(f"/api/v1/departures/{departure['id']}/report?format=csv", "aud")
    assert report.status_code == 200 and report.mimetype == "text/csv" and b"Acme" in report.get_data()
    pdf = api.get(f"/api/v1/departures/{departure['id']}/report?format=pdf", "aud")
    assert pdf.status_code == 200 and pdf.get_data().startswith(b"%PDF")
    # A notice withdrawn: a reason is needed, then normal policy again and the customer back.
    assert_error(api.post(f"/api/v1/departures/{departure['id']}/withdraw", "adm", json={"reason": "short"}),
                 403, "reason_too_short")
    withdrawn = api.post(f"/api/v1/departures/{departure['id']}/withdraw", "adm",
                         json={"reason": "Bob decided to stay with the company"})
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert _status(rt, "bob") == "active" and _owner(rt, customer) == cast["bob"].id
    [record] = events(rt, "departure:withdraw")
    assert record.actor_name == "adm" and record.reason_text == "Bob decided to stay with the company"
    assert json.loads(record.detail)["customers_returned"] == [customer]
    assert api.get(f"/api/v1/departures/{departure['id']}", "aud").status_code == 404
    again = api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(30)})
    assert again.status_code == 201  # a later notice starts afresh


def test_departure_api_refusals(api, rt, cast):
    assert_error(api.post("/api/v1/departures", "aud", json={"person": "bob", "last_day": _day(3)}),
                 403, "not_permitted")
    assert_error(api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": "tomorrow"}),
                 422, "invalid_request")
    assert_error(api.post("/api/v1/departures", "adm", json={"person": "nobody", "last_day": _day(3)}),
                 404, "not_found")
    assert_error(api.get("/api/v1/departures", "bob"), 403, "not_permitted")
    started = api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(3)}).get_json()
    assert_error(api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(3)}),
                 409, "already_departing")
    completed = api.post(f"/api/v1/departures/{started['id']}/complete", "adm")
    assert completed.status_code == 200 and completed.get_json()["status"] == "completed"
    assert_error(api.post(f"/api/v1/departures/{started['id']}/withdraw", "adm",
                          json={"reason": "Too late for this, really"}), 403, "departure_closed")


def test_the_departure_routes_are_in_the_openapi_document(api):
    paths = api.document["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/departures"])
    for suffix in ("", "/report", "/withdraw", "/complete"):
        assert f"/api/v1/departures/{{departure_id}}{suffix}" in paths


def test_the_departure_list_is_paged_in_the_database_and_never_shows_ones_own(api, rt, cast, users):
    """Three people on notice, an auditor among them: she never sees her own departure, in the API or the
    service's pages; the pages are cut in SQL, open ones first."""
    for name in ("dan", "eli"):
        users.make(name, Role.BORROWER)
    users.make("ada", Role.AUDITOR)
    with rt.db.session() as session:
        for name in ("dan", "eli", "ada"):
            departures.start_departure(rt, session, None, accounts.get_user(session, name),
                                       last_day=departures.today(rt.settings) + timedelta(days=10),
                                       successor=None, ctx=AccessContext.cli())
        session.commit()
    listed = api.get("/api/v1/departures", "aud").get_json()
    assert (listed["total"], listed["page"], listed["pages"]) == (3, 1, 1)
    own = api.get("/api/v1/departures?page=7", "ada").get_json()  # past the end: the last page
    assert {d["person"]["username"] for d in own["departures"]} == {"dan", "eli"}
    assert (own["total"], own["page"]) == (2, 1)
    with rt.db.session() as session:
        auditor = accounts.get_user(session, "aud")
        first = departures.page_of_departures(session, auditor, page=1, page_size=2)
        second = departures.page_of_departures(session, auditor, page=2, page_size=2)
        assert (first.total, first.pages, len(first.departures), len(second.departures)) == (3, 2, 2, 1)
        assert {d.id for d in first.departures}.isdisjoint({d.id for d in second.departures})


def test_a_notice_recorded_after_the_last_day_runs_the_last_day_steps_at_once(api, rt, cast):
    """As the page does: access has already ended, so loans and tokens go, sessions end and the account is
    disabled in the same request (not at the next sweep); a notice still running does none of it."""
    token = api.token("bob")
    assert api.get("/api/v1/me", token=token).status_code == 200
    late = api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(-2),
                                                        "notice_date": _day(-10), "successor": "bea"})
    assert late.status_code == 201, late.get_json()
    [offboard] = events(rt, "departure:offboard")
    assert offboard.subject_user_id == cast["bob"].id
    assert json.loads(offboard.detail)["departure_id"] == late.get_json()["id"]
    assert [e.subject_user_id for e in events(rt, "user:disable")] == [cast["bob"].id]
    with rt.db.session() as session:
        assert session.get(User, cast["bob"].id).disabled
    assert api.get("/api/v1/me", token=token, check=False).status_code == 401
    # Too late to withdraw: the last-day steps have run.
    assert_error(api.post(f"/api/v1/departures/{late.get_json()['id']}/withdraw", "adm",
                          json={"reason": "Bob decided to stay after all"}), 403, "already_offboarded")
    # A notice whose last day is still ahead: nothing runs yet.
    running = api.post("/api/v1/departures", "adm", json={"person": "bea", "last_day": _day(3)})
    assert running.status_code == 201, running.get_json()
    assert len(events(rt, "departure:offboard")) == 1
    with rt.db.session() as session:
        assert not session.get(User, cast["bea"].id).disabled


def test_nobody_on_notice_reads_a_departure_report_or_a_departure(api, rt, cast, users):
    """An administrator (or auditor) on notice read the departure report of any salesperson: every customer
    they owned or touched, by name and segment, as CSV, for as many colleagues as they liked in their last
    days, though administrators see no customer otherwise. Now the report and the departure (page and API)
    are refused to them (403 `reporter_departing`, each refusal recorded); a colleague who is not leaving
    reads them as before, and the operator's command line is unchanged."""
    users.make("aud2", Role.AUDITOR)
    api.customer("Bob's Key Account", owner="bob")
    with rt.db.session() as session:
        bobs = departures.start_departure(rt, session, None, accounts.get_user(session, "bob"), last_day=
                                          departures.today(rt.settings) + timedelta(days=20),
                                          successor=accounts.get_user(session, "bea"), ctx=AccessContext.cli()).id
        for leaver in ("adm", "aud"):
            departures.start_departure(rt, session, None, accounts.get_user(session, leaver),
                                       last_day=departures.today(rt.settings) + timedelta(days=20), successor=None,
                                       ctx=AccessContext.cli())
    for leaver in ("adm", "aud"):
        assert_error(api.get(f"/api/v1/departures/{bobs}/report?format=csv", leaver), 403, "reporter_departing")
        assert_error(api.get(f"/api/v1/departures/{bobs}", leaver), 403, "reporter_departing")
    assert [(e.actor_name, e.reason_code, e.subject_user_id) for e in events(rt, "departure:report", "denied")] == [
        (name, "reporter_departing", cast["bob"].id) for name in ("adm", "adm", "aud", "aud")]
    assert [e.actor_name for e in events(rt, "departure:report")] == []
    assert api.get(f"/api/v1/departures/{bobs}/report?format=csv", "aud2").status_code == 200
    assert api.get(f"/api/v1/departures/{bobs}", "aud2").status_code == 200
