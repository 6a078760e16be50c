"""The handover through the API, as the pages do it: an HR system moves the last day and the successor and
hands single customers on (or to the shared pool); the successor confirms first contact; an approver waives
what is missing. Each act audited as the page's is, each refusal with the policy's code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from tests.conftest import login
from tests.support.factories import reach_main_contact
from tests.support.locks import interleaved, meanwhile
from vault import policy
from vault.core.context import AccessContext
from vault.db.locking import locked
from vault.models import Customer, Departure, Role, User
from vault.services import accounts, customers, departures, records

REASON = "Spoke with the buyer about the renewal"


def _day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


def _owner(rt: Any, customer_id: int) -> int | None:
    with rt.db.session() as session:
        return session.get(Customer, customer_id).owner_id


def _notice(api: Any, person: str = "bob", successor: str | None = "bea", **fields: Any) -> dict[str, Any]:
    body = {"person": person, "last_day": _day(14), "notice_date": _day(-3), **fields}
    if successor:
        body["successor"] = successor
    started = api.post("/api/v1/departures", "adm", json=body)
    assert started.status_code == 201, started.get_json()
    return started.get_json()


def _item(departure: dict[str, Any], customer_id: int) -> int:
    return next(c["item_id"] for c in departure["customers"] if c["customer_id"] == customer_id)


@pytest.fixture
def tom(users: Any) -> User:
    return users.make("tom", Role.BORROWER)


def test_an_hr_system_moves_the_last_day_and_names_a_new_successor(api, rt, cast, tom):
    acme = api.customer("Acme", owner="bob", shared=False)
    departure = _notice(api)
    path = f"/api/v1/departures/{departure['id']}"
    moved = api.post(path, "adm", json={"last_day": _day(20), "successor": "tom", "note": "Leaves in June"})
    assert moved.status_code == 200, moved.get_json()
    body = moved.get_json()
    assert body["last_day"] == _day(20) and body["successor"]["username"] == "tom"
    assert body["customers"] == [{"item_id": _item(departure, acme), "customer_id": acme, "to_user_id": tom.id,
                                  "key": False, "settled": True, "moved": False}]
    assert _owner(rt, acme) == tom.id
    [update] = events(rt, "departure:update")
    detail = json.loads(update.detail)
    assert update.actor_name == "adm" and update.subject_user_id == cast["bob"].id
    assert detail["last_day"] == {"from": _day(14), "to": _day(20)} and detail["note"] is True
    assert detail["successor_id"] == {"from": cast["bea"].id, "to": tom.id}
    handed = [json.loads(e.detail) for e in events(rt, "customer:handover")]
    assert handed[-1]["to_user_id"] == tom.id and handed[-1]["from_user_id"] == cast["bea"].id
    # Only what is named changes: the note alone, then the same values again (no second record).
    assert api.post(path, "adm", json={"note": ""}).get_json()["successor"]["username"] == "tom"
    assert api.post(path, "adm", json={"last_day": _day(20)}).status_code == 200
    assert len(events(rt, "departure:update")) == 2
    with rt.db.session() as session:
        assert session.get(Departure, departure["id"]).note == ""


def test_a_last_day_moved_into_the_past_ends_access_and_runs_the_last_day_steps(api, rt, cast):
    departure = _notice(api, notice_date=_day(-10))
    token = api.token("bob")
    assert api.get("/api/v1/me", token=token).status_code == 200
    moved = api.post(f"/api/v1/departures/{departure['id']}", "adm", json={"last_day": _day(-2)})
    assert moved.status_code == 200, moved.get_json()
    [offboard] = events(rt, "departure:offboard")
    assert offboard.subject_user_id == cast["bob"].id
    with rt.db.session() as session:
        assert session.get(Departure, departure["id"]).offboarded_at is not None
        assert session.get(User, cast["bob"].id).disabled
    assert api.get("/api/v1/me", token=token, check=False).status_code == 401


def test_updating_a_departure_is_refused_as_on_the_page(api, rt, cast, users):
    departure = _notice(api)
    path = f"/api/v1/departures/{departure['id']}"
    assert_error(api.post(path, "aud", json={"note": "x"}), 403, "not_permitted")
    assert_error(api.post(path, "bea", json={"note": "x"}), 403, "not_permitted")
    assert_error(api.post("/api/v1/departures/99999", "adm", json={"note": "x"}), 404, "not_found")
    body = assert_error(api.post(path, "adm", json={}), 422, "invalid_request")
    assert "last_day" in body["fields"]
    assert_error(api.post(path, "adm", json={"last_day": "next week"}), 422, "invalid_request")
    assert_error(api.post(path, "adm", json={"last_day": _day(1), "extra": 1}), 422, "invalid_request")
    assert_error(api.post(path, "adm", json={"note": "x" * 2001}), 422, "invalid_request")
    assert_error(api.post(path, "adm", json={"last_day": _day(-30)}), 400, "invalid_dates")
    assert_error(api.post(path, "adm", json={"successor": "bob"}), 400, "invalid_successor")
    assert_error(api.post(path, "adm", json={"successor": "ann"}), 400, "invalid_successor")
    assert_error(api.post(path, "adm", json={"successor": "nobody"}), 404, "not_found")
    assert events(rt, "departure:update") == []
    # An administrator on notice manages nothing of their own departure.
    users.make("adz", Role.ADMIN)
    with rt.db.session() as session:
        own = departures.start_departure(rt, session, None, accounts.get_user(session, "adz"),
                                         last_day=departures.today(rt.settings) + timedelta(days=10),
                                         successor=None, ctx=AccessContext.cli()).id
        session.commit()
    assert_error(api.post(f"/api/v1/departures/{own}", "adz", json={"note": "mine"}), 403, "own_departure")
    assert events(rt, "departure:manage", "denied")[-1].actor_name == "adz"
    # A completed departure changes no more.
    assert api.post(f"{path}/complete", "adm").status_code == 200
    assert_error(api.post(path, "adm", json={"note": "late"}), 403, "departure_closed")
    assert events(rt, "departure:update") == []


def test_one_customer_is_handed_to_someone_else_or_returned_to_the_pool(api, rt, cast, tom):
    acme = api.customer("Acme", owner="bob", shared=False)
    bolt = api.customer("Bolt", owner="bob", shared=False)
    departure = _notice(api)
    base = f"/api/v1/departures/{departure['id']}/items"
    moved = api.post(f"{base}/{_item(departure, acme)}/reassign", "adm", json={"to": "tom"})
    assert moved.status_code == 200, moved.get_json()
    item = moved.get_json()
    assert item["customer"] == {"id": acme, "name": "Acme"} and item["to_user"]["username"] == "tom"
    assert item["person"]["username"] == "bob" and item["state"] == "handed_over" and item["settled"]
    assert _owner(rt, acme) == tom.id
    handover = json.loads(events(rt, "customer:handover")[-1].detail)
    assert (handover["from_user_id"], handover["to_user_id"], handover["item_id"]) == (
        cast["bea"].id, tom.id, item["id"])
    pooled = api.post(f"{base}/{_item(departure, bolt)}/reassign", "adm", json={"to_pool": True})
    assert pooled.status_code == 200, pooled.get_json()
    assert pooled.get_json()["state"] == "pooled" and pooled.get_json()["to_user"] is None
    assert _owner(rt, bolt) is None
    [returned] = events(rt, "pool:return")
    assert (returned.actor_name, returned.customer_id, json.loads(returned.detail)["departure_id"]) == (
        "adm", bolt, departure["id"])
    # Returned again: nothing more happens. A person again: it leaves the pool for them.
    assert api.post(f"{base}/{_item(departure, bolt)}/reassign", "adm", json={"to_pool": True}).status_code == 200
    assert len(events(rt, "pool:return")) == 1
    back = api.post(f"{base}/{_item(departure, bolt)}/reassign", "adm", json={"to": "bea"}).get_json()
    assert back["state"] == "handed_over" and _owner(rt, bolt) == cast["bea"].id


def test_reassigning_is_refused_as_on_the_page(api, rt, cast, tom):
    acme = api.customer("Acme", owner="bob", shared=False)
    departure = _notice(api)
    item = _item(departure, acme)
    path = f"/api/v1/departures/{departure['id']}/items/{item}/reassign"
    handovers = len(events(rt, "customer:handover"))
    assert_error(api.post(path, "aud", json={"to": "tom"}), 403, "not_permitted")
    assert_error(api.post(path, "bea", json={"to": "tom"}), 403, "not_permitted")
    for body in ({}, {"to_pool": False}, {"to": "tom", "to_pool": True}, {"to": None}, {"to": 7},
                 {"to_pool": "yes"}, {"to": "tom", "reason": "x"}):
        assert_error(api.post(path, "adm", json=body), 422, "invalid_request")
    assert_error(api.post(f"/api/v1/departures/{departure['id']}/items/99999/reassign", "adm", json={"to": "tom"}),
                 404, "not_found")
    assert_error(api.post(f"/api/v1/departures/99999/items/{item}/reassign", "adm", json={"to": "tom"}),
                 404, "not_found")
    assert_error(api.post(path, "adm", json={"to": "nobody"}), 404, "not_found")
    assert_error(api.post(path, "adm", json={"to": "ann"}), 400, "invalid_successor")
    assert_error(api.post(path, "adm", json={"to": "bob"}), 400, "invalid_successor")
    # Another departure's item is reached only through that departure.
    api.customer("Other", owner="tom", shared=False)
    other = _notice(api, person="tom", successor="bea")
    assert_error(api.post(f"/api/v1/departures/{other['id']}/items/{item}/reassign", "adm", json={"to": "bea"}),
                 404, "not_found")
    # Given since to someone outside the handover: the pool is no longer the departure's to decide.
    moved = api.post(f"/api/v1/customers/{acme}/owner", "ann", json={"owner": "carl", "reason": "Direct sales"})
    assert moved.status_code == 200, moved.get_json()
    assert_error(api.post(path, "adm", json={"to_pool": True}), 409, "not_leavers")
    assert events(rt, "pool:return") == []
    assert len(events(rt, "customer:handover")) == handovers + 1  # tom's own customer, handed to bea
    assert api.post(f"/api/v1/departures/{departure['id']}/complete", "adm").status_code == 200
    assert_error(api.post(path, "adm", json={"to": "tom"}), 403, "departure_closed")
    assert_error(api.post(path, "adm", json={"to_pool": True}), 403, "departure_closed")


def test_the_successor_lists_and_confirms_a_key_customer(api, rt, cast, tom):
    vip = api.customer("Vip Holdings", owner="bob", shared=False, segment="vip")
    departure = _notice(api)
    item = _item(departure, vip)
    listed = api.get("/api/v1/handover", "bea").get_json()
    assert [i["id"] for i in listed["items"]] == [item] and listed["awaiting_override"] == []
    assert listed["items"][0]["state"] == "pending" and listed["items"][0]["key"]
    assert api.get("/api/v1/handover", "tom").get_json()["items"] == []
    path = f"/api/v1/handover/items/{item}/confirm"
    good = {"contact_date": _day(0), "note": REASON}
    assert_error(api.post(path, "aud", json=good), 403, "not_permitted")
    assert_error(api.post(path, "adm", json=good), 403, "not_permitted")
    assert_error(api.get("/api/v1/handover", "aud"), 403, "not_permitted")
    assert_error(api.post(path, "tom", json=good), 403, "not_successor")
    assert_error(api.post(path, "bea", json=good), 403, "contact_not_logged")
    reach_main_contact(rt, vip, "bea")
    assert_error(api.post(path, "bea", json={"contact_date": _day(2), "note": REASON}), 403, "contact_date_future")
    assert_error(api.post(path, "bea", json={"contact_date": _day(-9), "note": REASON}), 403,
                 "contact_before_notice")
    assert_error(api.post(path, "bea", json={"contact_date": _day(0), "note": "ok"}), 403, "reason_too_short")
    for body in ({"note": REASON}, {"contact_date": "yesterday", "note": REASON}, {"contact_date": _day(0)},
                 {"contact_date": _day(0), "note": ""}):
        assert_error(api.post(path, "bea", json=body), 422, "invalid_request")
    assert_error(api.post("/api/v1/handover/items/99999/confirm", "bea", json=good), 404, "not_found")
    assert events(rt, "handover:confirm") == []
    assert [e.actor_name for e in events(rt, "handover:confirm", "denied")][:5] == ["aud", "adm", "aud", "tom", "bea"]
    confirmed = api.post(path, "bea", json=good)
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["state"] == "confirmed" and confirmed.get_json()["contact_date"] == _day(0)
    [record] = events(rt, "handover:confirm")
    assert (record.actor_name, record.customer_id, record.subject_user_id, record.reason_text) == (
        "bea", vip, cast["bob"].id, REASON)
    assert json.loads(record.detail) == {"departure_id": departure["id"], "item_id": item,
                                         "contact_date": _day(0)}
    assert_error(api.post(path, "bea", json=good), 403, "already_confirmed")
    assert api.post(f"/api/v1/departures/{departure['id']}/complete", "adm").status_code == 200
    assert api.get("/api/v1/handover", "bea").get_json()["items"] == []  # closed departures drop out
    assert_error(api.post(path, "bea", json=good), 403, "departure_closed")


def test_an_approver_waives_the_missing_confirmations(api, rt, cast, users):
    vip = api.customer("Vip Holdings", owner="bob", shared=False, segment="vip")
    users.make("pat", Role.BORROWER, Role.APPROVER)  # an approver who is also the successor
    departure = _notice(api, successor="pat")
    item = _item(departure, vip)
    path = f"/api/v1/departures/{departure['id']}/override"
    waiting = api.get("/api/v1/handover", "ann").get_json()["awaiting_override"]
    assert [(d["departure_id"], [i["id"] for i in d["items"]]) for d in waiting] == [(departure["id"], [item])]
    assert_error(api.post(path, "bea", json={"reason": REASON}), 403, "not_permitted")
    assert_error(api.post(path, "adm", json={"reason": REASON}), 403, "not_permitted")
    assert_error(api.post(path, "pat", json={"reason": REASON}), 403, "separation_of_duties")
    assert_error(api.post(path, "ann", json={"reason": "short"}), 403, "reason_too_short")
    assert_error(api.post(path, "ann", json={}), 422, "invalid_request")
    assert_error(api.post("/api/v1/departures/99999/override", "ann", json={"reason": REASON}), 404, "not_found")
    assert events(rt, "departure:override") == []
    waived = api.post(path, "ann", json={"reason": "The customer is on holiday until autumn"})
    assert waived.status_code == 200, waived.get_json()
    assert waived.get_json()["customers"] == [{"item_id": item, "customer_id": vip, "to_user_id": _owner(rt, vip),
                                               "key": True, "settled": True, "moved": False}]
    [record] = events(rt, "departure:override")
    assert (record.actor_name, record.subject_user_id, record.reason_text) == (
        "ann", cast["bob"].id, "The customer is on holiday until autumn")
    assert json.loads(record.detail)["items"] == [item]
    assert api.get("/api/v1/handover", "pat").get_json()["items"][0]["state"] == "waived"
    assert_error(api.post(path, "ann", json={"reason": REASON}), 403, "nothing_to_override")
    assert api.post(f"/api/v1/departures/{departure['id']}/complete", "adm").status_code == 200
    assert_error(api.post(path, "ann", json={"reason": REASON}), 403, "departure_closed")


def test_an_approver_never_waives_their_own_departure(api, rt, cast, users):
    users.make("abe", Role.APPROVER)
    api.customer("Vip Holdings", owner="bob", shared=False, segment="vip")
    with rt.db.session() as session:
        own = departures.start_departure(rt, session, None, accounts.get_user(session, "abe"),
                                         last_day=departures.today(rt.settings) + timedelta(days=10),
                                         successor=None, ctx=AccessContext.cli()).id
        session.commit()
    assert_error(api.post(f"/api/v1/departures/{own}/override", "abe", json={"reason": REASON}), 403,
                 "own_departure")


def test_the_new_routes_are_in_the_openapi_document(api):
    paths = api.document["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/departures/{departure_id}"])
    assert "post" in paths["/api/v1/departures/{departure_id}/items/{item_id}/reassign"]
    assert "post" in paths["/api/v1/departures/{departure_id}/override"]
    assert "post" in paths["/api/v1/handover/items/{item_id}/confirm"]
    assert "get" in paths["/api/v1/handover"]
    schemas = api.document["components"]["schemas"]
    assert schemas["HandoverReassign"]["additionalProperties"] is False
    assert schemas["HandoverConfirm"]["required"] == ["contact_date", "note"]


def test_a_customer_given_since_to_someone_else_leaves_the_successors_list(api, rt, cast, tom):
    """After the handover, a manager gives the customer to a third person through the ordinary change of
    owner. The successor's list still offered it, with a form to confirm a contact that was no longer
    theirs to confirm, for a customer they no longer work; HR saw it "awaiting confirmation" by the
    successor. The successor sees only what is still theirs and cannot confirm the other; HR sees it
    marked as moved, and hands the item to the present owner, who then confirms."""
    vip = api.customer("Vip Holdings", owner="bob", shared=False, segment="vip")
    plain = api.customer("Plain Shop", owner="bob", shared=False, segment="vip")
    departure = _notice(api)
    vip_item, plain_item = _item(departure, vip), _item(departure, plain)
    reach_main_contact(rt, vip, "bea")
    given = api.post(f"/api/v1/customers/{vip}/owner", "ann", json={"owner": "tom", "reason": "Direct sales"})
    assert given.status_code == 200, given.get_json()

    assert [i["id"] for i in api.get("/api/v1/handover", "bea").get_json()["items"]] == [plain_item]
    good = {"contact_date": _day(0), "note": REASON}
    assert_error(api.post(f"/api/v1/handover/items/{vip_item}/confirm", "bea", json=good), 403, "customer_moved")
    assert events(rt, "handover:confirm") == []
    assert events(rt, "handover:confirm", "denied")[-1].reason_code == "customer_moved"
    browser = api.app.test_client()
    login(browser, "bea")
    page = browser.get("/departures/handover").get_data(as_text=True)
    assert "Plain Shop" in page and "Vip Holdings" not in page
    home = browser.get("/").get_data(as_text=True)  # the home page's list of things to do
    assert "Plain Shop" in home and "Vip Holdings" not in home
    # Nor does the item let her write in the customer's contact log once she can see it again (a lookup).
    with rt.db.session() as session:
        bea = accounts.get_user(session, "bea")
        assert [c.id for c in customers.lookup(rt, session, bea, "Vip Holdings", ctx=AccessContext.cli())] == [vip]
    with rt.db.session() as session, pytest.raises(policy.Denied) as refused:
        records.add_log(rt, session, accounts.get_user(session, "bea"), session.get(Customer, vip),
                        happened_on=datetime.now(UTC).date(), channel="call", contact="Main Contact",
                        topic="Still looking after them", ctx=AccessContext.cli())
    assert refused.value.decision.code == "not_working"

    hr = {c["item_id"]: c for c in api.get(f"/api/v1/departures/{departure['id']}", "adm").get_json()["customers"]}
    assert (hr[vip_item]["moved"], hr[plain_item]["moved"]) == (True, False)
    admin = api.app.test_client()
    login(admin, "adm")
    show = admin.get(f"/departures/{departure['id']}").get_data(as_text=True)
    row = show[show.index(f'id="item-{vip_item}"'):]
    assert f"given since to {tom.display_name}" in row[:row.index("</tr>")]
    # HR hands the item to its present owner: theirs to confirm now.
    handed = api.post(f"/api/v1/departures/{departure['id']}/items/{vip_item}/reassign", "adm", json={"to": "tom"})
    assert handed.status_code == 200, handed.get_json()
    assert [i["id"] for i in api.get("/api/v1/handover", "tom").get_json()["items"]] == [vip_item]
    assert [i["id"] for i in api.get("/api/v1/handover", "bea").get_json()["items"]] == [plain_item]


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("to", ["tom", "pool"])
def test_a_handover_step_waiting_for_an_assignment_finds_the_customer_moved(api, rt, cast, tom, db_backend, to):
    """Ann gave Bob's customer, handed to Bea by his notice, to Carl, while the departure's operator handed it
    on to Tom (or to the pool). The step read the customer as still Bea's, waited for Ann's change, then
    wrote over it: Carl's customer went to Tom, recorded as taken from Bea. The step now reads the customer
    locked: it has left the handover (409 `not_leavers`), and stays Carl's."""
    acme = api.customer("Acme", owner="bob", shared=False)
    departure = _notice(api)
    path = f"/api/v1/departures/{departure['id']}/items/{_item(departure, acme)}/reassign"
    answers: list[Any] = []

    def assign(session: Any) -> None:
        ann = accounts.get_user(session, "ann")
        customers.set_owner(rt, session, ann, customers.get_for_assignment(session, ann, acme),
                            accounts.get_user(session, "carl"), reason="Direct sales", ctx=AccessContext())

    meanwhile(rt, assign, lambda: answers.append(
        api.post(path, "adm", json={"to": "tom"} if to == "tom" else {"to_pool": True})))
    assert_error(answers[0], 409, "not_leavers")
    assert _owner(rt, acme) == cast["carl"].id
    assert events(rt, "pool:return") == []
    assert [json.loads(e.detail)["to_user_id"] for e in events(rt, "customer:handover")] == [cast["bea"].id]


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("settings_overrides", [{"audit_shards": 1}])
@pytest.mark.parametrize("change", ["notice", "successor"])
def test_a_notice_meeting_an_assignment_of_the_leavers_customer_waits_instead_of_deadlocking(
        api, rt, cast, tom, db_backend, settings_overrides, change):
    """Ann was giving Bob's customer to Carl (the customer locked, her record not yet written) when Bob's
    notice was recorded (or his successor changed). The notice wrote its record first, holding the head
    of its chain, then waited for the customer; Ann's record then waited for that head: each held what
    the other waited for, and the database ended one (a 503, or Ann's change lost). A departure's step now
    locks the customers it moves before it writes any record: it waits for Ann, then carries on."""
    acme = api.customer("Acme", owner="bob", shared=False)
    departure = _notice(api) if change == "successor" else None
    answers: list[Any] = []
    interleaved(
        rt, lambda session: locked(session, Customer, acme),  # Ann's change has the customer...
        lambda: answers.append(
            api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(14),
                                                         "notice_date": _day(-3), "successor": "bea"})
            if change == "notice" else
            api.post(f"/api/v1/departures/{departure['id']}", "adm", json={"successor": "tom"})),
        lambda session, customer: customers.set_owner(  # ...and now writes its record
            rt, session, accounts.get_user(session, "ann"), customer, accounts.get_user(session, "carl"),
            reason="Direct sales", ctx=AccessContext()))
    assert answers[0].status_code in (200, 201), answers[0].get_data()[:300]
    assert _owner(rt, acme) == cast["carl"].id
