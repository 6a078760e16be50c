"""The start page's to-do list writes its record of the customers it names, on both databases.

The start page named the customers handed to a successor, the customers rotated to a person and the
person's own customers overdue for an update, with no record, while the handover list, the rotation tasks
and the customer lists each record theirs. Now one `customer:list` ("home", with the ids of the customers
it names, each once) per page view; a page that names no customer records none."""

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


def _listings(rt: Any, mark: int) -> list[tuple[Any, ...]]:
    with rt.db.session() as session:
        found = session.scalars(select(AuditEvent).where(AuditEvent.seq > mark, AuditEvent.action == "customer:list")
                                .order_by(AuditEvent.seq))
        return [(e.actor_name, e.outcome, json.loads(e.detail)["listing"], json.loads(e.detail)["ids"])
                for e in found]


def _signed_in(app: Any, username: str) -> Any:
    client = app.test_client()
    login(client, username)
    return client


def test_the_handovers_on_the_start_page_are_a_recorded_listing(api: Any, app: Any, rt: Any, cast: Any) -> None:
    for name in ("bob", "bea", "kim", "adm"):
        api.token(name)
    adriatic = api.customer("Adriatic Foods", owner="bea", shared=False)
    api.upload(adriatic, grade=2, title="Adriatic price list")
    api.customer("Baltic Trade", owner="bea", shared=False)
    made = api.post("/api/v1/departures", "adm", json={
        "person": "bea", "successor": "bob", "last_day": (date.today() + timedelta(days=14)).isoformat()})
    assert made.status_code == 201, made.get_json()
    bob = _signed_in(app, "bob")
    mark = _mark(rt)
    page = bob.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # Only the key customer waits for his confirmation (Baltic Trade needs none): the one named, recorded.
    assert 'id="todo-handovers"' in html and "Adriatic Foods" in html and "Baltic Trade" not in html
    assert _listings(rt, mark) == [("bob", "allowed", "home", [adriatic])]
    # Each view of the page is a read of its own.
    mark = _mark(rt)
    assert bob.get("/").status_code == 200
    assert _listings(rt, mark) == [("bob", "allowed", "home", [adriatic])]
    # Kim's start page names no customer: nothing recorded.
    kim = _signed_in(app, "kim")
    mark = _mark(rt)
    html = kim.get("/").get_data(as_text=True)
    assert "Adriatic Foods" not in html and "Baltic Trade" not in html
    assert _listings(rt, mark) == []


def test_customers_rotated_to_one_and_one_s_overdue_customers_are_recorded_once_each(
        api: Any, app: Any, rt: Any, users: Any, clock: Any) -> None:
    users.make("mia", Role.BORROWER)
    users.manage("mia", "bob", "bea")
    nordlicht = api.customer("Nordlicht Handel", owner="bob", shared=False)
    own = api.customer("Oslo Fisk", owner="bea", shared=False)
    clock.advance(timedelta(days=400))
    api.tokens.clear()
    [proposal] = [p for p in api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
                  if p["customer"]["id"] == nordlicht]
    approved = api.post(f"/api/v1/rotations/{proposal['id']}/approve", "mia", json={"to": "bea"})
    assert approved.status_code == 200, approved.get_json()
    bea = _signed_in(app, "bea")
    mark = _mark(rt)
    html = bea.get("/").get_data(as_text=True)
    assert 'id="todo-rotations"' in html and 'id="todo-overdue"' in html
    assert "Nordlicht Handel" in html and "Oslo Fisk" in html
    # Nordlicht is both rotated to her and (untouched for 400 days) overdue: named once.
    [(actor, outcome, listing, ids)] = _listings(rt, mark)
    assert (actor, outcome, listing) == ("bea", "allowed", "home")
    assert ids[0] == nordlicht and sorted(ids) == sorted({nordlicht, own}) and len(ids) == len(set(ids))
