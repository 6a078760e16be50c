"""The handover: customers move to the successor at notice; key customers need the successor's
confirmation of contact, or an approver's waiver with a reason, before the departure can complete."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.departure.conftest import OFFICE, days_from_today
from tests.support.factories import reach_main_contact
from vault import policy
from vault.core.actions import Action
from vault.core.errors import Conflict, ServiceError
from vault.models import Customer, Departure, HandoverItem, Loan, Role
from vault.services import departures


@pytest.fixture
def notice(rt, company) -> dict[str, Any]:
    """Sam owns a VIP customer, one with a grade-2 file, and an ordinary one; notice with Sue as successor."""
    vip = company.customer("Vip Holdings", "vip")
    graded = company.customer("Graded Works")
    plain = company.customer("Plain Shop")
    company.document(graded, grade=2)
    company.document(plain, grade=1)
    with rt.db.session() as session:
        departure = departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, "sam"), last_day=days_from_today(10),
            successor=company.user(session, "sue"), notice_date=days_from_today(-1), ctx=OFFICE)
        items = {item.customer_id: item.id for item in departure.items}
        return {"departure": departure.id, "vip": vip, "graded": graded, "plain": plain, "items": items}


def _item(rt, item_id: int) -> HandoverItem:
    with rt.db.session() as session:
        item = session.get(HandoverItem, item_id)
        item.departure  # noqa: B018 (loaded for use after the session)
        return item


def _complete(rt, company, actor: str = "adm") -> Departure:
    with rt.db.session() as session:
        departure = session.scalar(select(Departure))
        return departures.complete(rt, session, company.user(session, actor), departure, ctx=OFFICE)


def test_customers_move_to_the_successor_and_key_ones_are_marked(rt, company, notice):
    with rt.db.session() as session:
        owners = {c.id: c.owner_id for c in session.scalars(select(Customer))}
        items = {i.customer_id: i for i in session.scalars(select(HandoverItem))}
    assert all(owner == company.ids["sue"] for owner in owners.values())
    assert {cid: (i.key, i.key_reason) for cid, i in items.items()} == {
        notice["vip"]: (True, "segment vip"), notice["graded"]: (True, "grade 2-3 file"), notice["plain"]: (False, "")}
    handovers = company.events("customer:handover")
    assert [(e.actor_name, e.customer_id, e.subject_user_id) for e in handovers] == [
        ("adm", cid, company.ids["sue"]) for cid in sorted(items)]


def test_the_departure_cannot_complete_while_key_customers_are_unconfirmed(rt, company, notice):
    mark = company.head()
    with pytest.raises(policy.Denied) as refused:
        _complete(rt, company)
    assert refused.value.decision.code == "customers_unconfirmed"
    assert company.events("departure:complete", after=mark) == []
    assert company.refresh("sam").status == "departing"


def test_the_successor_confirms_contact_and_the_departure_completes(rt, company, notice):
    for key in ("vip", "graded"):
        reach_main_contact(rt, notice[key], "sue")
        with rt.db.session() as session:
            item = session.get(HandoverItem, notice["items"][notice[key]])
            departures.confirm_contact(rt, session, company.user(session, "sue"), item, contact_date=days_from_today(0),
                                       note="Called the buyer, introduced myself", ctx=OFFICE)
    confirms = company.events("handover:confirm")
    assert [(e.actor_name, e.customer_id, e.subject_user_id, e.reason_text) for e in confirms] == [
        ("sue", notice["vip"], company.ids["sam"], "Called the buyer, introduced myself"),
        ("sue", notice["graded"], company.ids["sam"], "Called the buyer, introduced myself")]
    departure = _complete(rt, company)
    assert departure.status == "completed"
    sam = company.refresh("sam")
    assert sam.status == "departed" and sam.disabled and not sam.can_sign_in
    actions = [e.action for e in company.events(after=confirms[-1].seq)]
    assert actions[-2:] == ["departure:offboard", "departure:complete"] and "user:disable" in actions
    with pytest.raises(policy.Denied) as again:
        _complete(rt, company)
    assert again.value.decision.code == "departure_closed"


@pytest.mark.parametrize(("who", "code"), [
    ("tom", "not_successor"),  # another account manager
    ("ann", "not_successor"),  # an approver: may waive, not confirm
])
def test_only_the_successor_confirms(rt, company, notice, who, code):
    mark = company.head()
    with rt.db.session() as session, pytest.raises(policy.Denied) as refused:
        departures.confirm_contact(rt, session, company.user(session, who),
                                   session.get(HandoverItem, notice["items"][notice["vip"]]),
                                   contact_date=days_from_today(0), note="Spoke to them at length", ctx=OFFICE)
    assert refused.value.decision.code == code
    assert company.events("handover:confirm", after=mark) == []
    assert _item(rt, notice["items"][notice["vip"]]).confirmed_at is None


def test_the_leaver_cannot_confirm_even_when_named(rt, company, notice):
    """A departing person who somehow received a customer of their own departure is still refused."""
    item = _item(rt, notice["items"][notice["vip"]])
    with rt.db.session() as session:
        session.get(HandoverItem, item.id).to_user_id = company.ids["sam"]
    with rt.db.session() as session, pytest.raises(policy.Denied) as refused:
        departures.confirm_contact(rt, session, company.user(session, "sam"), session.get(HandoverItem, item.id),
                                   contact_date=days_from_today(0), note="I spoke to myself about it", ctx=OFFICE)
    assert refused.value.decision.code == "own_departure"


@pytest.mark.parametrize(("day", "note", "code"), [
    (1, "Visited them in person", "contact_date_future"),
    (-5, "Visited them in person", "contact_before_notice"),
    (0, "ok", "reason_too_short"),
    (0, "..............", "reason_not_meaningful"),
    (None, "Visited them in person", "contact_date_future"),
])
def test_a_confirmation_needs_a_plausible_date_and_a_note(rt, company, notice, day, note, code):
    with rt.db.session() as session, pytest.raises(policy.Denied) as refused:
        departures.confirm_contact(rt, session, company.user(session, "sue"),
                                   session.get(HandoverItem, notice["items"][notice["vip"]]),
                                   contact_date=None if day is None else days_from_today(day), note=note, ctx=OFFICE)
    assert refused.value.decision.code == code


def test_an_approver_overrides_with_a_reason_and_the_departure_completes(rt, company, notice):
    with rt.db.session() as session, pytest.raises(policy.Denied) as refused:
        departures.override(rt, session, company.user(session, "ann"), session.get(Departure, notice["departure"]),
                            reason="too short", ctx=OFFICE)
    assert refused.value.decision.code == "reason_too_short"
    with rt.db.session() as session:
        waived = departures.override(rt, session, company.user(session, "ann"),
                                     session.get(Departure, notice["departure"]),
                                     reason="Customer unreachable until next quarter; account secured", ctx=OFFICE)
    assert sorted(i.customer_id for i in waived) == sorted([notice["vip"], notice["graded"]])
    (event,) = company.events("departure:override")
    assert event.actor_name == "ann" and event.subject_user_id == company.ids["sam"]
    assert sorted(json.loads(event.detail)["customers"]) == sorted([notice["vip"], notice["graded"]])
    assert _complete(rt, company).status == "completed"


def test_the_override_is_not_for_the_leaver_the_successor_or_without_need(rt, company, users, notice):
    users.make("ava")  # no roles: the role gate refuses
    with rt.db.session() as session:
        departure = session.get(Departure, notice["departure"])
        ava = company.user(session, "ava")
        assert policy.authorize(ava, Action.DEPARTURE_OVERRIDE, departure).code == "not_permitted"
    # an approver who is also the successor of the pending customers
    users.make("sal", Role.APPROVER, Role.BORROWER)
    with rt.db.session() as session:
        departure = session.get(Departure, notice["departure"])
        departures.update_departure(rt, session, company.user(session, "adm"), departure,
                                    successor=company.user(session, "sal"), ctx=OFFICE)
    with rt.db.session() as session, pytest.raises(policy.Denied) as refused:
        departures.override(rt, session, company.user(session, "sal"), session.get(Departure, notice["departure"]),
                            reason="I will call them later on, promise", ctx=OFFICE)
    assert refused.value.decision.code == "separation_of_duties"
    for key in ("vip", "graded"):
        reach_main_contact(rt, notice[key], "sal")
        with rt.db.session() as session:
            departures.confirm_contact(rt, session, company.user(session, "sal"),
                                       session.get(HandoverItem, notice["items"][notice[key]]),
                                       contact_date=days_from_today(0), note="Lunch with the owner", ctx=OFFICE)
    with rt.db.session() as session, pytest.raises(policy.Denied) as nothing:
        departures.override(rt, session, company.user(session, "ann"), session.get(Departure, notice["departure"]),
                            reason="Nothing left but let us try anyway", ctx=OFFICE)
    assert nothing.value.decision.code == "nothing_to_override"
    assert company.events("departure:override") == []


def test_a_new_successor_receives_the_unconfirmed_customers_and_must_confirm_anew(rt, company, notice):
    reach_main_contact(rt, notice["vip"], "sue")
    with rt.db.session() as session:
        departures.confirm_contact(rt, session, company.user(session, "sue"),
                                   session.get(HandoverItem, notice["items"][notice["vip"]]),
                                   contact_date=days_from_today(0), note="Met the buyer on Monday", ctx=OFFICE)
    with rt.db.session() as session:
        departures.update_departure(rt, session, company.user(session, "adm"),
                                    session.get(Departure, notice["departure"]), successor=company.user(session, "tom"),
                                    ctx=OFFICE)
    with rt.db.session() as session:
        owners = {c.id: c.owner_id for c in session.scalars(select(Customer))}
    # the confirmed customer stays with Sue; the others go to Tom
    assert owners == {notice["vip"]: company.ids["sue"], notice["graded"]: company.ids["tom"],
                      notice["plain"]: company.ids["tom"]}
    with rt.db.session() as session:
        item = session.get(HandoverItem, notice["items"][notice["vip"]])
        departures.reassign(rt, session, company.user(session, "adm"), item, company.user(session, "tom"), ctx=OFFICE)
    confirmed = _item(rt, notice["items"][notice["vip"]])
    assert confirmed.to_user_id == company.ids["tom"] and confirmed.confirmed_at is None


def test_no_successor_puts_customers_on_the_reassignment_list(rt, company):
    customer = company.customer("Lonely Customer")
    with rt.db.session() as session:
        departure = departures.start_departure(rt, session, None, company.user(session, "sam"),
                                               last_day=days_from_today(3), successor=None, ctx=OFFICE)
        assert [(i.customer_id, i.to_user_id) for i in departure.items] == [(customer, None)]
    with rt.db.session() as session, pytest.raises(policy.Denied) as refused:
        departures.complete(rt, session, None, session.scalar(select(Departure)), ctx=OFFICE)
    assert refused.value.decision.code == "handover_incomplete"
    with rt.db.session() as session:
        assert session.get(Customer, customer).owner_id == company.ids["sam"]
        departures.reassign(rt, session, company.user(session, "adm"), session.scalar(select(HandoverItem)),
                            company.user(session, "tom"), ctx=OFFICE)
    with rt.db.session() as session:
        assert departures.complete(rt, session, None, session.scalar(select(Departure)), ctx=OFFICE).status == \
            "completed"
        assert session.get(Customer, customer).owner_id == company.ids["tom"]


def test_starting_a_departure_refuses_bad_requests(rt, company):
    with rt.db.session() as session:
        adm, sam = company.user(session, "adm"), company.user(session, "sam")
        with pytest.raises(policy.Denied) as own:
            departures.start_departure(rt, session, adm, adm, last_day=days_from_today(3), successor=None, ctx=OFFICE)
        assert own.value.decision.code == "own_departure"
        with pytest.raises(policy.Denied) as role:
            departures.start_departure(rt, session, company.user(session, "ann"), sam, last_day=days_from_today(3),
                                       successor=None, ctx=OFFICE)
        assert role.value.decision.code == "not_permitted"
        for successor in ("sam", "ann", "adm"):  # the leaver, no account manager
            with pytest.raises(ServiceError) as bad:
                departures.start_departure(rt, session, adm, sam, last_day=days_from_today(3),
                                           successor=company.user(session, successor), ctx=OFFICE)
            assert bad.value.code == "invalid_successor"
        with pytest.raises(ServiceError) as dates:
            departures.start_departure(rt, session, adm, sam, last_day=days_from_today(-3), successor=None,
                                       notice_date=days_from_today(-1), ctx=OFFICE)
        assert dates.value.code == "invalid_dates"
        with pytest.raises(ServiceError) as future:
            departures.start_departure(rt, session, adm, sam, last_day=days_from_today(9), successor=None,
                                       notice_date=days_from_today(2), ctx=OFFICE)
        assert future.value.code == "invalid_dates"
    assert company.events("departure:start") == []
    assert company.refresh("sam").status == "active"
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "sam"), last_day=days_from_today(3),
                                   successor=None, ctx=OFFICE)
    with rt.db.session() as session, pytest.raises(Conflict):
        departures.start_departure(rt, session, None, company.user(session, "sam"), last_day=days_from_today(4),
                                   successor=None, ctx=OFFICE)


def test_the_handover_pages_confirm_and_override(rt, app, company, notice):
    sue = app.test_client()
    login(sue, "sue")
    page = sue.get("/departures/handover")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Vip Holdings" in html and "Graded Works" in html and "Plain Shop" in html
    vip_item = notice["items"][notice["vip"]]
    # A key customer's row names the step its confirmation needs first, with the way to it; an ordinary
    # customer's does not (it needs no logged contact).
    assert html.count("log your call with its main contact") == 2
    assert f'href="/customers/{notice["vip"]}#contact-log"' in html
    assert f'href="/customers/{notice["graded"]}#contact-log"' in html
    assert f'href="/customers/{notice["plain"]}#contact-log"' not in html
    token = csrf_from(html)
    undated = sue.post(f"/departures/handover/items/{vip_item}/confirm", data={
        "csrf_token": token, f"i{vip_item}-note": "Phoned the managing director"})
    undated_html = undated.get_data(as_text=True)
    # The page again, the note kept and the reason beside the date (was: a refusal page, the note lost).
    assert undated.status_code == 400 and "Enter the date." in undated_html
    assert "Phoned the managing director" in undated_html and "Graded Works" in undated_html
    bad = sue.post(f"/departures/handover/items/{vip_item}/confirm", data={
        "csrf_token": token, f"i{vip_item}-contact_date": days_from_today(0).isoformat(), f"i{vip_item}-note": "hi"})
    assert bad.status_code == 403 and "at least 10 characters" in bad.get_data(as_text=True)
    assert company.events("handover:confirm", "denied")[-1].reason_code == "reason_too_short"
    unlogged = sue.post(f"/departures/handover/items/{vip_item}/confirm", data={
        "csrf_token": token, f"i{vip_item}-contact_date": days_from_today(0).isoformat(),
        f"i{vip_item}-note": "Phoned the managing director"})
    unlogged_html = unlogged.get_data(as_text=True)
    # The handover page again (was: a refusal page offering only the start page, the note lost): the
    # reason, the note kept, and the link to the contact log beside the form. It still counts as a refusal.
    assert unlogged.status_code == 403 and "contact log" in unlogged_html
    assert "<h1>Handover</h1>" in unlogged_html and "Phoned the managing director" in unlogged_html
    assert f'href="/customers/{notice["vip"]}#contact-log"' in unlogged_html
    assert company.events("handover:confirm", "denied")[-1].reason_code == "contact_not_logged"
    assert not policy.is_slip("contact_not_logged")
    reach_main_contact(rt, notice["vip"], "sue")
    ok = sue.post(f"/departures/handover/items/{vip_item}/confirm", data={
        "csrf_token": token, f"i{vip_item}-contact_date": days_from_today(0).isoformat(),
        f"i{vip_item}-note": "Phoned the managing director"})
    assert ok.status_code == 302
    assert _item(rt, vip_item).confirmed_by_id == company.ids["sue"]
    # Tom may not confirm Sue's customer (audited refusal, nothing changes).
    tom = app.test_client()
    login(tom, "tom")
    graded_item = notice["items"][notice["graded"]]
    refused = tom.post(f"/departures/handover/items/{graded_item}/confirm", data={
        "csrf_token": csrf_from(tom.get("/departures/handover").get_data(as_text=True)),
        f"i{graded_item}-contact_date": days_from_today(0).isoformat(), f"i{graded_item}-note": "Phoned them today"})
    assert refused.status_code == 403
    assert company.events("handover:confirm", "denied")[-1].reason_code == "not_successor"
    # The approver waives the remaining one on the override page.
    ann = app.test_client()
    login(ann, "ann")
    listing = ann.get("/departures/handover").get_data(as_text=True)
    assert f"/departures/{notice['departure']}/override" in listing
    form = ann.get(f"/departures/{notice['departure']}/override")
    assert form.status_code == 200 and "Graded Works" in form.get_data(as_text=True)
    done = ann.post(f"/departures/{notice['departure']}/override", data={
        "csrf_token": csrf_from(form.get_data(as_text=True)), "reason": "Customer closed for the summer holidays"})
    assert done.status_code == 302
    # The administrator completes on the departure page.
    admin = app.test_client()
    login(admin, "adm")
    show = admin.get(f"/departures/{notice['departure']}")
    assert show.status_code == 200 and "can be completed" in show.get_data(as_text=True)
    # Without the box ticked, nothing happens: the page again, the box marked (the server checks it).
    unticked = admin.post(f"/departures/{notice['departure']}/complete",
                          data={"csrf_token": csrf_from(show.get_data(as_text=True))})
    assert unticked.status_code == 400 and "Tick the box to confirm." in unticked.get_data(as_text=True)
    assert company.refresh("sam").status != "departed"
    completed = admin.post(f"/departures/{notice['departure']}/complete",
                           data={"csrf_token": csrf_from(show.get_data(as_text=True)), "confirm": "y"})
    assert completed.status_code == 302
    assert company.refresh("sam").status == "departed"
    with rt.db.session() as session:
        assert session.scalars(select(Loan)).all() == []


def test_departure_pages_are_refused_to_the_wrong_roles(app, company, notice):
    borrower = app.test_client()
    login(borrower, "tom")
    for path in ("/departures/", f"/departures/{notice['departure']}", f"/departures/{notice['departure']}/report",
                 "/departures/new", "/departures/loans", f"/departures/{notice['departure']}/override"):
        assert borrower.get(path).status_code == 403, path
    auditor = app.test_client()
    login(auditor, "aud")
    assert auditor.get(f"/departures/{notice['departure']}").status_code == 200
    listing = auditor.get("/departures/")
    assert listing.status_code == 200 and f"/departures/{notice['departure']}" in listing.get_data(as_text=True)
    assert auditor.get("/departures/new").status_code == 403
    assert auditor.get("/departures/handover").status_code == 403


def _last_seq(company) -> int:
    events = company.events()
    return events[-1].seq if events else 0


@pytest.mark.parametrize(("reason", "status", "refused"), [
    ("too short", 403, "reason_too_short"),  # sent, and refused by the policy for what was typed
    ("x" * 2001, 400, None),  # sent, and failing the form's own check (too long): nothing decided
])
def test_the_override_form_shown_again_records_the_customers_it_names(rt, app, company, notice, reason, status,
                                                                      refused):
    """Before, only the first showing recorded the key customers; the form shown again with its input refused
    named them once more with no record (and a form too long was answered 200, as if shown for the first time)."""
    ann = app.test_client()
    login(ann, "ann")
    form = ann.get(f"/departures/{notice['departure']}/override")
    assert form.status_code == 200
    first = company.events("customer:list")[-1]
    assert json.loads(first.detail)["listing"] == "override" and "again" not in json.loads(first.detail)
    mark = _last_seq(company)
    again = ann.post(f"/departures/{notice['departure']}/override", data={
        "csrf_token": csrf_from(form.get_data(as_text=True)), "reason": reason})
    assert again.status_code == status
    page = again.get_data(as_text=True)
    assert "Vip Holdings" in page and "Graded Works" in page
    [read] = company.events("customer:list", after=mark)
    assert (read.outcome, read.actor_name, read.subject_user_id) == ("allowed", "ann", company.ids["sam"])
    assert read.request_id == again.headers["X-Request-ID"]
    detail = json.loads(read.detail)
    assert sorted(detail.pop("ids")) == sorted([notice["vip"], notice["graded"]])
    assert detail == {"listing": "override", "departure_id": notice["departure"], "again": True}
    denied = company.events(outcome="denied", after=mark)
    assert [(e.action, e.reason_code) for e in denied] == ([("departure:override", refused)] if refused else [])
    # Nothing was waived.
    assert _item(rt, notice["items"][notice["vip"]]).confirmed_by_id is None
    assert company.events("departure:override", "allowed", after=mark) == []
