"""Every page and answer that shows customers, files or other people's loans writes its record, on both
databases: the start page's to-do list, the leavers' loans, a departure's page, the rotation proposals
and an alert's evidence were shown with no record at all (an auditor, refused the customers' pages, read
their names in an alert). And the steps of a departure completed before its last day are recorded under
the person who completed it, not as the system."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from tests.conftest import login
from vault.models import AuditEvent, Role


def _mark(rt: Any) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.max(AuditEvent.seq))) or 0


def _since(rt: Any, mark: int) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.seq > mark).order_by(AuditEvent.seq)))


def _browser(app: Any, name: str) -> Any:
    client = app.test_client()
    login(client, name)
    return client


def _scene(api: Any) -> tuple[int, int]:
    for name in ("carl", "bob", "bea", "ann", "kim", "aud", "adm"):
        api.token(name)  # made up front: their records are not what is counted below
    customer = api.customer("Nordlicht Handel")
    return customer, api.upload(customer, grade=2, title="Secret price list 2025")


def _notice(api: Any, person: str) -> dict[str, Any]:
    made = api.post("/api/v1/departures", "adm", json={
        "person": person, "last_day": (date.today() + timedelta(days=14)).isoformat()})
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def test_the_start_page_records_the_requests_it_lists(api: Any, app: Any, rt: Any, cast: Any) -> None:
    _customer, document = _scene(api)
    loan = api.loan(document, "bob")
    ann = _browser(app, "ann")
    mark = _mark(rt)
    home = ann.get("/").get_data(as_text=True)
    assert "Secret price list 2025" in home
    [listed] = _since(rt, mark)
    assert (listed.action, listed.actor_name) == ("loan:queue", "ann")
    assert json.loads(listed.detail)["listing"] == "home" and json.loads(listed.detail)["ids"] == [loan]
    mark = _mark(rt)
    _browser(app, "bob").get("/")  # bob's own loans only: nothing of anyone else's shown, nothing recorded
    assert [e.action for e in _since(rt, mark) if e.action == "loan:queue"] == []


def test_the_leavers_loans_are_recorded_on_the_page_and_through_the_api(api: Any, app: Any, rt: Any,
                                                                        cast: Any) -> None:
    _customer, document = _scene(api)
    loan = api.approved_loan(document, "bea")
    _notice(api, "bea")
    mark = _mark(rt)
    assert "Secret price list 2025" in _browser(app, "kim").get("/departures/loans").get_data(as_text=True)
    assert api.get("/api/v1/departures/loans", "ann").get_json()["loans"]
    listed = [(e.actor_name, json.loads(e.detail)["listing"], json.loads(e.detail)["ids"])
              for e in _since(rt, mark) if e.action == "loan:queue"]
    assert listed == [("kim", "leavers", [loan]), ("ann", "leavers", [loan])]


def test_a_departure_s_page_and_its_json_are_recorded_reads_of_its_report(api: Any, app: Any, rt: Any,
                                                                          cast: Any) -> None:
    _scene(api)
    adriatic = api.customer("Adriatic Foods", owner="bea", shared=False)
    departure = _notice(api, "bea")
    reads = _page_and_json_reads(api, app, rt, f"/departures/{departure['id']}", "departure:report", "format")
    assert reads == [("aud", cast["bea"].id, "page", [adriatic]), ("aud", cast["bea"].id, "json", [adriatic])]


def _page_and_json_reads(api: Any, app: Any, rt: Any, path: str, action: str, where: str) -> list[tuple[Any, ...]]:
    """The auditor reads `path` as a page and through the API (both name Adriatic Foods): the records of
    `action` written, as (actor, person, where it was shown, customers)."""
    mark = _mark(rt)
    assert "Adriatic Foods" in _browser(app, "aud").get(path).get_data(as_text=True)
    assert api.get(f"/api/v1{path}", "aud").status_code == 200
    return [(e.actor_name, e.subject_user_id, json.loads(e.detail)[where], json.loads(e.detail)["customers"])
            for e in _since(rt, mark) if e.action == action]


def test_the_rotation_proposals_are_recorded_as_a_listing_of_their_customers(api: Any, app: Any, rt: Any,
                                                                             users: Any, clock: Any) -> None:
    users.make("mia", Role.BORROWER)
    users.manage("mia", "bob", "bea")
    nordlicht = api.customer("Nordlicht Handel", owner="bob", shared=False)
    clock.advance(timedelta(days=400))
    api.tokens.clear()
    assert api.post("/api/v1/rotations/propose", "mia").status_code == 200
    api.token("ann")
    mark = _mark(rt)
    assert api.get("/api/v1/rotations", "ann").get_json()["proposals"]
    assert "Nordlicht Handel" in _browser(app, "ann").get("/rotation/").get_data(as_text=True)
    listings = [(e.actor_name, json.loads(e.detail)["listing"], json.loads(e.detail)["ids"])
                for e in _since(rt, mark) if e.action == "customer:list"]
    assert listings == [("ann", "rotation", [nordlicht])] * 2


def test_an_alert_s_evidence_is_a_recorded_read(api: Any, app: Any, rt: Any, cast: Any) -> None:
    _scene(api)
    adriatic = api.customer("Adriatic Foods", owner="bea", shared=False)
    _notice(api, "bea")
    [alert] = [a for a in api.get("/api/v1/alerts", "aud").get_json()["alerts"] if a["rule"] == "notice"]
    reads = _page_and_json_reads(api, app, rt, f"/alerts/{alert['id']}", "alert:read", "shown")
    assert reads == [("aud", cast["bea"].id, "page", [adriatic]), ("aud", cast["bea"].id, "json", [adriatic])]


def test_the_steps_of_a_departure_completed_early_are_recorded_under_who_completed_it(api: Any, rt: Any,
                                                                                      cast: Any) -> None:
    _customer, document = _scene(api)
    api.approved_loan(document, "bea")
    departure = _notice(api, "bea")
    mark = _mark(rt)
    assert api.post(f"/api/v1/departures/{departure['id']}/complete", "adm", json={}).status_code == 200
    steps = {e.action: (e.actor_id, e.actor_name) for e in _since(rt, mark)}
    admin = (cast["adm"].id, "adm")
    assert steps["loan:revoke"] == admin and steps["user:disable"] == admin and steps["token:revoke"] == admin
    assert steps["departure:offboard"] == admin and steps["departure:complete"] == admin


def test_a_document_s_page_reading_panel_and_json_are_recorded_reads(api: Any, app: Any, rt: Any,
                                                                     cast: Any) -> None:
    customer, document = _scene(api)
    bob = _browser(app, "bob")
    mark = _mark(rt)
    for path in (f"/documents/{document}", f"/documents/{document}/reading"):
        assert "Secret price list 2025" in bob.get(path).get_data(as_text=True)
    assert api.get(f"/api/v1/documents/{document}", "bob").get_json()["title"] == "Secret price list 2025"
    reads = [(e.actor_name, e.customer_id, e.document_id, json.loads(e.detail)["shown"])
             for e in _since(rt, mark) if e.action == "document:read"]
    assert reads == [("bob", customer, document, shown) for shown in ("page", "reading", "json")]
