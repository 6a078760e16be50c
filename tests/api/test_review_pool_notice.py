"""Review of the pool and notices: a person on notice takes no customer from the pool, neither by a claim
of their own nor by a manager's assignment, and no longer sees the pool's leads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.api.conftest import assert_error, events
from tests.conftest import login
from tests.pool.scene import owner_of, pooled
from vault.core.context import AccessContext
from vault.models import Role, Segment, User, utcnow
from vault.services import departures


def test_a_person_on_notice_takes_nothing_from_the_pool(api: Any, rt: Any, users: Any) -> None:
    users.make("max", Role.BORROWER)
    lead, other = pooled(rt, Segment.KEY, "Initech Lead"), pooled(rt, Segment.ORDINARY, "Globex Lead")
    with rt.db.session() as session:
        bob = session.query(User).filter_by(username="bob").one()
        bob.manager_id = session.query(User).filter_by(username="max").one().id
        departures.start_departure(rt, session, None, bob, last_day=(utcnow() + timedelta(days=20)).date(),
                                   successor=None, ctx=AccessContext.cli())
        session.commit()
    assert api.get("/api/v1/pool", "bea").status_code == 200  # a colleague not leaving still sees it
    assert_error(api.get("/api/v1/pool", "bob"), 403, "person_departing")
    assert_error(api.post(f"/api/v1/pool/{lead}/claim", "bob"), 403, "person_departing")
    assert_error(api.post(f"/api/v1/pool/{other}/assign", "max", json={"owner": "bob"}), 403, "person_departing")
    assert owner_of(rt, lead) is None and owner_of(rt, other) is None
    assert events(rt, "pool:claim") == [] and events(rt, "pool:assign") == []
    assert [e.customer_id for e in events(rt, "pool:claim", "denied")] == [lead]
    assert [e.customer_id for e in events(rt, "pool:assign", "denied")] == [other]
    # Someone not leaving still claims the same lead.
    assert api.post(f"/api/v1/pool/{lead}/claim", "bea").status_code == 200


def test_nobody_gives_a_customer_to_a_person_on_notice(api: Any, rt: Any, users: Any) -> None:
    """The same holds outside the pool: a manager neither makes someone on notice a customer's owner nor
    adds them as a co-owner (the handover itself keeps a leaver on their old customers until the last day)."""
    users.make("max", Role.BORROWER)
    customer_id = api.customer("Nordlicht Handel", owner="bea", shared=False)
    with rt.db.session() as session:
        max_id = session.query(User).filter_by(username="max").one().id
        for name in ("bob", "bea"):
            session.query(User).filter_by(username=name).one().manager_id = max_id
        bob = session.query(User).filter_by(username="bob").one()
        departures.start_departure(rt, session, None, bob, last_day=(utcnow() + timedelta(days=20)).date(),
                                   successor=None, ctx=AccessContext.cli())
        session.commit()
    assert_error(api.post(f"/api/v1/customers/{customer_id}/owner", "max", json={"owner": "bob"}), 403,
                 "person_departing")
    assert_error(api.post(f"/api/v1/customers/{customer_id}/co-owners", "max", json={"user": "bob"}), 403,
                 "person_departing")
    shown = api.get(f"/api/v1/customers/{customer_id}", "bea").get_json()
    assert shown["owner"]["username"] == "bea" and shown["co_owners"] == []
    assert events(rt, "customer:owner") == [] and events(rt, "customer:co_owner_add") == []


def test_nobody_on_notice_is_made_the_owner_of_a_new_customer(api: Any, rt: Any, users: Any) -> None:
    """Creating a customer gives it an owner (its creator by default): someone on notice would gain one
    outside the handover, left to them after their last day. Refused `person_departing`, nothing created;
    a new lead for the shared pool, or one for a colleague, is still theirs to enter."""
    users.make("cleo", Role.COMPILER)
    with rt.db.session() as session:
        for name in ("cleo", "bob"):
            departures.start_departure(rt, session, None, session.query(User).filter_by(username=name).one(),
                                       last_day=(utcnow() + timedelta(days=20)).date(), successor=None,
                                       ctx=AccessContext.cli())
        session.commit()
    assert_error(api.post("/api/v1/customers", "cleo", json={"name": "Fresh Lead", "segment": "key"}), 403,
                 "person_departing")
    assert_error(api.post("/api/v1/customers", "carl", json={"name": "Fresh Lead", "segment": "key", "owner": "bob"}),
                 403, "person_departing")
    assert events(rt, "customer:create") == []
    assert len(events(rt, "customer:create", "denied")) == 2
    pooled_lead = api.post("/api/v1/customers", "cleo", json={"name": "Fresh Lead", "segment": "key", "pool": True})
    assert pooled_lead.status_code == 201, pooled_lead.get_json()
    assert api.post("/api/v1/customers", "cleo", json={"name": "Other Lead", "segment": "key",
                                                       "owner": "carl"}).status_code == 201


def test_the_pages_offer_nobody_on_notice_to_own_a_customer(api: Any, rt: Any, app: Any) -> None:
    """The new-customer form's owners (and so the owner, co-owner and pool-assignment choices, which share
    the list) leave out people on notice, whom choosing would only get the refusal."""
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, session.query(User).filter_by(username="bob").one(),
                                   last_day=(utcnow() + timedelta(days=20)).date(), successor=None,
                                   ctx=AccessContext.cli())
        session.commit()
    browser = app.test_client()
    login(browser, "carl")
    form = browser.get("/customers/new").get_data(as_text=True)
    assert "(bea)" in form and "(bob)" not in form
