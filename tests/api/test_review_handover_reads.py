"""The handover list writes its record, on both databases.

The successor's handover list (page and API) named the customers a departure gave them, and an approver's
answer also named every key customer of the departures they may waive, with no record at all, while every
other list of customers was recorded. Now it is recorded as the rotation proposals are: `customer:list`
("handover", with the ids of the customers it names)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from tests.conftest import csrf_from, login
from vault.models import AuditEvent, Role


def _mark(rt: Any) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.max(AuditEvent.seq))) or 0


def _since(rt: Any, mark: int, action: str | None = None) -> list[AuditEvent]:
    with rt.db.session() as session:
        query = select(AuditEvent).where(AuditEvent.seq > mark).order_by(AuditEvent.seq)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))


def _listings(rt: Any, mark: int) -> list[tuple[Any, ...]]:
    return [(e.actor_name, e.outcome, json.loads(e.detail)["listing"], json.loads(e.detail)["ids"])
            for e in _since(rt, mark, "customer:list")]


def _handover_scene(api: Any) -> tuple[int, int, dict[str, Any]]:
    """bea, on notice, hands Adriatic Foods (key: a grade-2 file) and Baltic Trade to bob."""
    for name in ("carl", "bob", "bea", "ann", "kim", "aud", "adm"):
        api.token(name)  # made up front: their records are not what is counted below
    adriatic = api.customer("Adriatic Foods", owner="bea", shared=False)
    api.upload(adriatic, grade=2, title="Adriatic price list")
    baltic = api.customer("Baltic Trade", owner="bea", shared=False)
    made = api.post("/api/v1/departures", "adm", json={
        "person": "bea", "successor": "bob", "last_day": (date.today() + timedelta(days=14)).isoformat()})
    assert made.status_code == 201, made.get_json()
    return adriatic, baltic, made.get_json()


def test_the_successor_s_handover_list_is_a_recorded_listing_on_the_page_and_through_the_api(
        api: Any, app: Any, rt: Any, cast: Any) -> None:
    adriatic, baltic, _departure = _handover_scene(api)
    bob = app.test_client()
    login(bob, "bob")
    mark = _mark(rt)
    page = bob.get("/departures/handover").get_data(as_text=True)
    assert "Adriatic Foods" in page and "Baltic Trade" in page
    assert {i["customer"]["name"] for i in api.get("/api/v1/handover", "bob").get_json()["items"]} == {
        "Adriatic Foods", "Baltic Trade"}
    assert _listings(rt, mark) == [("bob", "allowed", "handover", [adriatic, baltic])] * 2
    # Nothing handed to kim, nothing to waive: nothing shown, nothing recorded.
    mark = _mark(rt)
    assert api.get("/api/v1/handover", "kim").get_json() == {"items": [], "awaiting_override": []}
    assert _listings(rt, mark) == []


def test_an_approver_s_handover_answer_records_the_key_customers_it_names(api: Any, app: Any, rt: Any,
                                                                         cast: Any) -> None:
    adriatic, _baltic, departure = _handover_scene(api)
    mark = _mark(rt)
    answer = api.get("/api/v1/handover", "ann").get_json()
    assert answer["items"] == []
    [waivable] = answer["awaiting_override"]
    assert waivable["departure_id"] == departure["id"]
    assert [i["customer"]["name"] for i in waivable["items"]] == ["Adriatic Foods"]
    assert _listings(rt, mark) == [("ann", "allowed", "handover", [adriatic])]
    # The page names the leaver only, no customer of theirs: nothing to record.
    ann = app.test_client()
    login(ann, "ann")
    mark = _mark(rt)
    page = ann.get("/departures/handover").get_data(as_text=True)
    assert "Adriatic Foods" not in page and "/override" in page
    assert _listings(rt, mark) == []


def test_a_refused_confirmation_shows_the_list_again_and_its_record_stands(api: Any, app: Any, rt: Any,
                                                                          cast: Any) -> None:
    adriatic, baltic, departure = _handover_scene(api)
    [item] = [i for i in departure["customers"] if i["customer_id"] == baltic]
    bob = app.test_client()
    csrf = login(bob, "bob")
    csrf = csrf_from(bob.get("/departures/handover").get_data(as_text=True))
    mark = _mark(rt)
    # A form that does not validate (no date): the page again with the list, 400.
    typed = bob.post(f"/departures/handover/items/{item['item_id']}/confirm",
                     data={"csrf_token": csrf, f"i{item['item_id']}-note": "We spoke at length"})
    assert typed.status_code == 400 and "Baltic Trade" in typed.get_data(as_text=True)
    # A date in the future: refused by policy (recorded), the page again with the list, 403.
    future = (date.today() + timedelta(days=3)).isoformat()
    refused = bob.post(f"/departures/handover/items/{item['item_id']}/confirm",
                       data={"csrf_token": csrf, f"i{item['item_id']}-contact_date": future,
                             f"i{item['item_id']}-note": "We spoke at length"})
    assert refused.status_code == 403 and "Baltic Trade" in refused.get_data(as_text=True)
    assert _listings(rt, mark) == [("bob", "allowed", "handover", [adriatic, baltic])] * 2
    [denied] = _since(rt, mark, "handover:confirm")
    assert (denied.outcome, denied.reason_code) == ("denied", "contact_date_future")


def test_the_customers_rotated_to_one_are_a_recorded_listing_on_the_page_and_through_the_api(
        api: Any, app: Any, rt: Any, users: Any, clock: Any) -> None:
    """The same gap on the rotation's own handover: the customers rotated to a person, whose contact is
    theirs to confirm, were listed with no record. Now `customer:list` ("rotation_tasks")."""
    users.make("mia", Role.BORROWER)
    users.manage("mia", "bob", "bea")
    nordlicht = api.customer("Nordlicht Handel", owner="bob", shared=False)
    clock.advance(timedelta(days=400))
    api.tokens.clear()
    [proposal] = api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
    approved = api.post(f"/api/v1/rotations/{proposal['id']}/approve", "mia", json={"to": "bea"})
    assert approved.status_code == 200, approved.get_json()
    api.token("bea")
    bea = app.test_client()
    login(bea, "bea")
    mark = _mark(rt)
    assert [t["customer"]["name"] for t in api.get("/api/v1/rotations/tasks", "bea").get_json()["tasks"]] == [
        "Nordlicht Handel"]
    assert "Nordlicht Handel" in bea.get("/rotation/tasks").get_data(as_text=True)
    assert _listings(rt, mark) == [("bea", "allowed", "rotation_tasks", [nordlicht])] * 2
    mark = _mark(rt)
    assert api.get("/api/v1/rotations/tasks", "bob").get_json() == {"tasks": []}
    assert _listings(rt, mark) == []
