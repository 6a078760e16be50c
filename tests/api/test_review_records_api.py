"""Review of the customer record through the API: text no database can hold is a 422, and a person whose
customer access is suspended cannot tell an existing customer from a missing one."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests.api.conftest import assert_error, events
from vault.core.context import AccessContext
from vault.models import Customer, Role, User
from vault.services import departures


def test_record_text_with_an_unpaired_surrogate_is_a_422_and_changes_nothing(api: Any, rt: Any) -> None:
    customer_id = api.customer("Nordlicht Handel", owner="bob", shared=False)
    for body in ('{"city": "Ham\\ud800burg"}', '{"notes": "x\\udfff"}', '{"terms": {"pay\\ud800": "30"}}',
                 '{"contacts": [{"name": "Jana", "messaging": {"tele\\ud800": "@j"}}]}'):
        answer = api.call("PATCH", f"/api/v1/customers/{customer_id}", "bob", data=body,
                          headers={"Content-Type": "application/json"})
        assert_error(answer, 422, "invalid_request")
        assert "valid Unicode" in json.dumps(answer.get_json()["fields"]), body
    assert events(rt, "customer:edit") == []
    saved = api.call("PATCH", f"/api/v1/customers/{customer_id}", "bob", json={"city": "München 😀"})
    assert saved.status_code == 200 and saved.get_json()["city"] == "München 😀"


def test_a_suspended_person_gets_the_same_answer_for_a_customer_that_exists_and_one_that_does_not(
        api: Any, rt: Any) -> None:
    customer_id = api.customer("Nordlicht Handel", owner="bob", shared=False)
    with rt.db.session() as session:
        missing = (session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1)) or 0) + 1000
        bob = session.scalar(select(User).where(User.username == "bob"))
        bob.customers_suspended_at = bob.created_at
        session.commit()
    for path in ("", "/history", "/history/1"):
        seen = api.get(f"/api/v1/customers/{customer_id}{path}", "bob")
        unseen = api.get(f"/api/v1/customers/{missing}{path}", "bob")
        assert (seen.status_code, seen.get_json()) == (unseen.status_code, unseen.get_json()), path
        assert_error(unseen, 403, "access_suspended")
    for ask in (customer_id, missing):
        assert_error(api.post(f"/api/v1/customers/{ask}/reveal", "bob",
                              json={"reason": "Renewal call", "place": "Office"}), 403, "access_suspended")
    refused = events(rt, "customer:read", "denied") + events(rt, "customer:reveal", "denied")
    assert {e.customer_id for e in refused} == {customer_id, missing}
    assert events(rt, "customer:read") == [] and events(rt, "customer:reveal") == []


def test_the_answer_of_a_change_of_owner_names_the_new_owner(api: Any, rt: Any, users: Any) -> None:
    """The customer an owner change, a release to the pool or a claim answers with is the customer as it
    now is, not as the request first loaded it."""


    users.make("max", Role.BORROWER)
    customer_id = api.customer("Nordlicht Handel", owner="bea", shared=False)
    with rt.db.session() as session:
        max_id = session.scalar(select(User.id).where(User.username == "max"))
        for person in session.scalars(select(User).where(User.username.in_(["bob", "bea"]))):
            person.manager_id = max_id
        session.commit()
    moved = api.post(f"/api/v1/customers/{customer_id}/owner", "max", json={"owner": "bob"})
    assert moved.status_code == 200 and moved.get_json()["owner"]["username"] == "bob"
    released = api.post(f"/api/v1/customers/{customer_id}/release-to-pool", "max",
                        json={"reason": "Moved to the northern region"})
    assert released.status_code == 200 and released.get_json()["owner"] is None
    claimed = api.post(f"/api/v1/pool/{customer_id}/claim", "bea")
    assert claimed.status_code == 200 and claimed.get_json()["owner"]["username"] == "bea"


def test_a_person_on_notice_no_longer_edits_their_customers_records(api: Any, rt: Any) -> None:
    """Until the last day the leaver still works their customers, and could rewrite a record on the way
    out: the main contact's e-mail changed to their own, so the letter introducing the successor, and
    whatever follows, reaches them instead of the customer. Edits (a confirmation too) are refused
    `editor_departing` and recorded; the contact log stays theirs; a colleague still edits."""
    customer_id = api.customer("Nordlicht Handel", owner="bob", shared=False)
    with rt.db.session() as session:
        bob = session.scalars(select(User).where(User.username == "bob")).one()
        departures.start_departure(rt, session, None, bob, last_day=departures.today(rt.settings) + timedelta(days=20),
                                   successor=None, ctx=AccessContext.cli())
        session.commit()
    before = api.get(f"/api/v1/customers/{customer_id}", "bob").get_json()
    for body in ({"contacts": [{"name": "Jana", "emails": ["bob.private@example.org"], "main": True}]},
                 {"city": "Elsewhere"}, {}):
        assert_error(api.call("PATCH", f"/api/v1/customers/{customer_id}", "bob", json=body), 403,
                     "editor_departing")
    assert events(rt, "customer:edit") == [] and events(rt, "customer:confirm") == []
    assert len(events(rt, "customer:edit", "denied")) == 3
    assert api.get(f"/api/v1/customers/{customer_id}", "bob").get_json() == before
    logged = api.post(f"/api/v1/customers/{customer_id}/log", "bob",
                      json={"happened_on": departures.today(rt.settings).isoformat(), "channel": "call",
                            "contact": "Jana", "topic": "Handing over to my successor", "result": "", "next_step": "",
                            "verification": False})
    assert logged.status_code == 201, logged.get_json()
