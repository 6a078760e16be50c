"""Departures found wanting by the attack review, on both databases: dates outside any calendar the
product can compute with, a last day moved after access ended, a person on notice gaining or passing on
customers outside the handover, and the leavers' loans shown beyond what a custodian may see."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.api.conftest import assert_error, events
from tests.conftest import csrf_from, login
from tests.departure.conftest import run_cli
from tests.pool.scene import owner_of, pooled
from vault.core.context import AccessContext
from vault.models import Customer, CustomerCoOwner, Departure, Role, Segment, User, UserStatus
from vault.services import accounts, departures

REASON = "The customer moved to another region"


def _day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


def _user(rt, username: str) -> User:
    with rt.db.session() as session:
        user = accounts.get_user(session, username)
        session.expunge(user)
        return user


def test_dates_beyond_the_calendar_are_a_clear_refusal_on_every_door(api, rt, cast, tmp_path):
    """Finding: a last day of 9999-12-31 (or a notice in year 1) overflowed computing when access ends: a
    500 on the API and the page, a traceback at the command line. Now 400 `invalid_dates`, nothing kept."""
    for body in ({"person": "bob", "last_day": "9999-12-31"},
                 {"person": "bob", "last_day": "0001-01-01", "notice_date": "0001-01-01"},
                 {"person": "bob", "last_day": _day(5), "notice_date": "0001-01-01"}):
        assert_error(api.post("/api/v1/departures", "adm", json=body), 400, "invalid_dates")
    cli = run_cli(rt, tmp_path, "departure", "start", "bob", "--last-day", "9999-12-31")
    assert cli.exit_code == 1 and "ten years" in cli.output, cli.output
    assert _user(rt, "bob").status == UserStatus.ACTIVE and events(rt, "departure:start") == []
    started = api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(5)}).get_json()
    assert_error(api.post(f"/api/v1/departures/{started['id']}", "adm", json={"last_day": "9999-12-31"}),
                 400, "invalid_dates")
    cli = run_cli(rt, tmp_path, "departure", "update", "bob", "--last-day", "9999-12-31")
    assert cli.exit_code == 1 and "ten years" in cli.output, cli.output
    assert _user(rt, "bob").last_day.isoformat() == _day(5) and events(rt, "departure:update") == []


def test_a_last_day_that_has_passed_is_not_moved_to_give_access_back(api, rt, cast, tmp_path):
    """Finding: once the last day had ended, access was refused, but until the last-day steps ran (the
    sweep, cron) an administrator could move the last day ahead, on any door: the person could sign in
    again with every loan and token intact, the very thing a withdrawal is refused for. Now refused
    `last_day_passed`, on the command line as through the API; the note and successor may still change."""
    token = api.token("bob")
    with rt.db.session() as session:
        departure = departures.start_departure(rt, session, None, accounts.get_user(session, "bob"),
                                               last_day=departures.today(rt.settings) - timedelta(days=1),
                                               notice_date=departures.today(rt.settings) - timedelta(days=9),
                                               successor=None, ctx=AccessContext.cli())
        departure_id = departure.id
        session.commit()
    assert not _user(rt, "bob").can_sign_in
    cli = run_cli(rt, tmp_path, "departure", "update", "bob", "--last-day", _day(30))
    assert cli.exit_code == 1 and "last_day_passed" in cli.output, cli.output
    with rt.db.session() as session:
        assert session.get(Departure, departure_id).offboarded_at is None  # the steps have not run yet
    assert not _user(rt, "bob").can_sign_in and _user(rt, "bob").last_day.isoformat() == _day(-1)
    assert api.get("/api/v1/me", token=token, check=False).status_code == 401
    noted = run_cli(rt, tmp_path, "departure", "update", "bob", "--note", "Keys returned at reception")
    assert noted.exit_code == 0, noted.output
    # Through the API (the request's sweep runs the last-day steps first): refused the same way.
    assert_error(api.post(f"/api/v1/departures/{departure_id}", "adm", json={"last_day": _day(30)}),
                 403, "last_day_passed")
    # Both refusals recorded: the command line's under the operator (user agent vault-cli), the API's.
    refused = events(rt, "departure:manage", outcome=None)
    assert [(e.outcome, e.reason_code, e.user_agent == "vault-cli") for e in refused] == [
        ("denied", "last_day_passed", True), ("denied", "last_day_passed", False)]
    assert _user(rt, "bob").last_day.isoformat() == _day(-1)


def test_a_person_on_notice_neither_gains_customers_nor_passes_them_on(api, rt, cast, users):
    """Finding: on notice (no successor yet), bob still owned his customer and could release it to the
    pool for an accomplice to claim; he could claim pooled leads himself, and an approver (or his manager)
    could give him customers or make him a co-owner: his reach widened while he was leaving; and he could
    list the pool's leads. Now each is refused and audited; the handover moves his customer."""
    own = api.customer("Own Co", shared=False)
    other = api.customer("Other Co", shared=False)
    assert api.post(f"/api/v1/customers/{own}/owner", "ann", json={"owner": "bob"}).status_code == 200
    lead, lead2 = pooled(rt, Segment.ORDINARY), pooled(rt, Segment.ORDINARY)
    started = api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(10)})
    assert started.status_code == 201
    assert_error(api.post(f"/api/v1/customers/{own}/release-to-pool", "bob", json={"reason": REASON}),
                 403, "owner_departing")
    assert_error(api.post(f"/api/v1/pool/{lead}/claim", "bob"), 403, "person_departing")
    # Nothing to claim, nothing to list: the pool's names are no window for someone leaving.
    assert api.get("/api/v1/pool", "bea").get_json()["total"] == 2
    assert_error(api.get("/api/v1/pool", "bob"), 403, "person_departing")
    assert events(rt, "pool:read", outcome="denied")[-1].actor_name == "bob"
    assert_error(api.post(f"/api/v1/pool/{lead2}/assign", "ann", json={"owner": "bob"}), 403, "person_departing")
    assert_error(api.post(f"/api/v1/customers/{other}/owner", "ann", json={"owner": "bob"}), 403,
                 "person_departing")
    assert_error(api.post(f"/api/v1/customers/{other}/co-owners", "ann", json={"user": "bob"}), 403,
                 "person_departing")
    assert (owner_of(rt, own), owner_of(rt, lead), owner_of(rt, lead2), owner_of(rt, other)) == (
        cast["bob"].id, None, None, cast["carl"].id)
    with rt.db.session() as session:
        assert session.scalars(select(CustomerCoOwner).where(CustomerCoOwner.user_id == cast["bob"].id)).all() == []
    refused = {(e.action, e.customer_id) for e in events(rt, "pool:release", outcome="denied")
               + events(rt, "pool:claim", outcome="denied") + events(rt, "pool:assign", outcome="denied")
               + events(rt, "customer:assign", outcome="denied")}
    assert {("pool:release", own), ("pool:claim", lead), ("pool:assign", lead2)} <= refused
    assert len([r for r in refused if r[1] == other]) == 1
    # The handover sends the leaver's customer to the pool; a colleague claims it, and a lead, as usual.
    departure = started.get_json()
    [item] = departure["customers"]
    pooled_back = api.post(f"/api/v1/departures/{departure['id']}/items/{item['item_id']}/reassign", "adm",
                           json={"to_pool": True})
    assert pooled_back.status_code == 200, pooled_back.get_json()
    for customer in (own, lead):
        assert api.post(f"/api/v1/pool/{customer}/claim", "bea").status_code == 200
    with rt.db.session() as session:
        assert {session.get(Customer, c).owner_id for c in (own, lead)} == {cast["bea"].id}


def test_the_leavers_loans_show_a_custodian_only_loans_a_custodian_sees(api, app, rt, users, cast):
    """Finding: the leavers' list showed custodians every open loan of a person on notice, requests
    included: titles and customer names of loans no custodian sees anywhere else (`visible_loans`). Now a
    custodian sees the approved and active ones, approvers every open one, on the page as in the API."""
    customer = api.customer()
    plans, prices = api.upload(customer), api.upload(customer, title="Prices")
    active, requested = api.approved_loan(plans, "bob"), api.loan(prices, "bob")
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, accounts.get_user(session, "bob"),
                                   last_day=departures.today(rt.settings) + timedelta(days=20), successor=None,
                                   ctx=AccessContext.cli())
        session.commit()
    assert [loan["id"] for loan in api.get("/api/v1/departures/loans", "kim").get_json()["loans"]] == [active]
    assert [loan["id"] for loan in api.get("/api/v1/departures/loans", "ann").get_json()["loans"]] == [
        active, requested]
    custodian = app.test_client()
    login(custodian, "kim")
    page = custodian.get("/departures/loans")
    assert page.status_code == 200 and b"Prices" not in page.data and b"Annual report" in page.data


def test_the_handover_does_not_take_back_a_customer_given_since_to_someone_else(api, rt, cast, users):
    """Finding: once a manager or approver had given the leaver's customer to someone outside the handover,
    the administrator's reassignment (and a new successor) still moved it, taking it from its new owner,
    although the API promises 409 `not_leavers` (as returning it to the pool answers). Now the handover
    leaves it where it is (or names its present owner), on the page, the API and the command line alike."""
    users.make("dan", Role.BORROWER)
    acme = api.customer("Acme", shared=False)
    globex = api.customer("Globex", shared=False)
    for customer in (acme, globex):
        assert api.post(f"/api/v1/customers/{customer}/owner", "ann", json={"owner": "bob"}).status_code == 200
    departure = api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(10),
                                                             "successor": "bea"}).get_json()
    item = {entry["customer_id"]: entry["item_id"] for entry in departure["customers"]}
    moved = api.post(f"/api/v1/customers/{acme}/owner", "ann", json={"owner": "carl", "reason": "Direct sales"})
    assert moved.status_code == 200, moved.get_json()
    handovers = len(events(rt, "customer:handover"))
    path = f"/api/v1/departures/{departure['id']}/items/{item[acme]}/reassign"
    assert_error(api.post(path, "adm", json={"to": "dan"}), 409, "not_leavers")
    # A new successor receives what is still in the handover (Globex), not what has left it (Acme).
    updated = api.post(f"/api/v1/departures/{departure['id']}", "adm", json={"successor": "dan"})
    assert updated.status_code == 200, updated.get_json()
    assert (owner_of(rt, acme), owner_of(rt, globex)) == (cast["carl"].id, _user(rt, "dan").id)
    assert [e.customer_id for e in events(rt, "customer:handover")[handovers:]] == [globex]
    # Its present owner may be named, so the handover completes: Carl keeps it and confirms the contact.
    kept = api.post(path, "adm", json={"to": "carl"})
    assert kept.status_code == 200 and kept.get_json()["to_user"]["username"] == "carl"
    assert owner_of(rt, acme) == cast["carl"].id
    # Still in the handover: reassigned as before.
    again = api.post(f"/api/v1/departures/{departure['id']}/items/{item[globex]}/reassign", "adm",
                     json={"to": "bea"})
    assert again.status_code == 200 and owner_of(rt, globex) == cast["bea"].id


def test_the_notice_of_an_administrator_is_recorded_on_the_page_as_through_the_api(api, app, rt, cast, users):
    """Finding (parity): the page offered no administrator as the person leaving, although the policy (and
    the API and command line) allow recording another administrator's notice; a departing administrator's
    access then ended only if someone used the API. Now the page offers every other active person, and a
    late notice ends the administrator's tokens at once, as the API does. One's own is still refused."""
    users.make("ada", Role.ADMIN)
    token = users.token("ada")
    admin = app.test_client()
    login(admin, "adm")
    form = admin.get("/departures/new").get_data(as_text=True)
    choices = form.split('name="user"')[1].split("</select>")[0]
    ada = _user(rt, "ada").id
    assert f'value="{ada}"' in choices and f'value="{cast["adm"].id}"' not in choices
    answer = admin.post("/departures/new", data={
        "csrf_token": csrf_from(form), "user": ada, "notice_date": _day(-5), "last_day": _day(-1),
        "successor": "0"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    assert _user(rt, "ada").disabled and [e.subject_user_id for e in events(rt, "departure:offboard")] == [ada]
    assert api.get("/api/v1/me", token=token, check=False).status_code == 401


def test_a_withdrawn_notice_ends_the_co_ownerships_the_handover_gave_until_the_last_day(api, rt, cast):
    """Finding: the handover keeps the leaver on each customer as a co-owner until the last day, to
    introduce the successor. A withdrawn notice has no last day: the leaver stayed co-owner for good, of
    customers given back to him (owner and co-owner at once) and of those given since to someone else,
    whose record he could go on reading and editing. Now the withdrawal ends them and names them."""
    acme = api.customer("Acme", shared=False)
    globex = api.customer("Globex", shared=False)
    for customer in (acme, globex):
        assert api.post(f"/api/v1/customers/{customer}/owner", "ann", json={"owner": "bob"}).status_code == 200
    departure = api.post("/api/v1/departures", "adm", json={"person": "bob", "last_day": _day(10),
                                                             "successor": "bea"}).get_json()
    with rt.db.session() as session:
        assert sorted(session.scalars(select(CustomerCoOwner.customer_id)
                                      .where(CustomerCoOwner.user_id == cast["bob"].id))) == [acme, globex]
    moved = api.post(f"/api/v1/customers/{globex}/owner", "ann", json={"owner": "carl", "reason": "Direct sales"})
    assert moved.status_code == 200, moved.get_json()
    withdrawn = api.post(f"/api/v1/departures/{departure['id']}/withdraw", "adm",
                         json={"reason": "Bob decided to stay with the company"})
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert (owner_of(rt, acme), owner_of(rt, globex)) == (cast["bob"].id, cast["carl"].id)
    with rt.db.session() as session:
        assert session.scalars(select(CustomerCoOwner).where(CustomerCoOwner.user_id == cast["bob"].id)).all() == []
    [record] = events(rt, "departure:withdraw")
    assert json.loads(record.detail)["co_ownerships_ended"] == sorted([acme, globex])
    assert api.get(f"/api/v1/customers/{globex}", "bob", check=False).status_code == 404


def test_a_departure_s_days_are_written_yyyy_mm_dd(api, rt, cast):
    """The ISO basic and week forms ("20270101", "2027-W01-1") were taken as last days."""
    for day in ("20270101", "2027-W01-1"):
        refused = api.post("/api/v1/departures", "adm", json={"person": "bea", "last_day": day})
        assert "last_day" in assert_error(refused, 422, "invalid_request")["fields"]
    with rt.db.session() as session:
        assert session.scalars(select(Departure)).all() == []
