"""The last working day: access ends at midnight in the company's timezone, the last-day steps run on the
next request or `vault departures run`, and custodians revoke leavers' loans before that."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.departure.conftest import HOME, OFFICE, TRUSTED, ApiCaller, days_from_today, evening_policy
from vault import policy
from vault.config.settings import load_settings
from vault.models import Departure, Loan, User, UserStatus
from vault.services import departures


def _notice(rt, company, last_day: date, successor: str | None = "sue") -> int:
    with rt.db.session() as session:
        return departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, "sam"), last_day=last_day,
            successor=company.user(session, successor) if successor else None,
            notice_date=min(last_day, days_from_today(0)), ctx=OFFICE).id


def test_the_end_of_the_last_day_is_midnight_in_the_company_timezone():
    settings = load_settings({"timezone": "Pacific/Auckland"}, environ={})
    ends = departures.end_of_day(settings, date(2026, 7, 10))
    assert ends == datetime(2026, 7, 10, 12, 0, tzinfo=UTC)  # 11 July 00:00 at UTC+12 (winter)
    summer = departures.end_of_day(settings, date(2026, 1, 10))
    assert summer == datetime(2026, 1, 10, 11, 0, tzinfo=UTC)  # UTC+13 in daylight saving time


def test_can_sign_in_turns_false_when_the_last_day_has_passed():
    now = datetime.now(UTC)
    person = User(username="x", display_name="X", password_hash="-", status=UserStatus.DEPARTING, disabled=False,
                  access_ends_at=now + timedelta(minutes=5))
    assert person.can_sign_in
    person.access_ends_at = now - timedelta(seconds=1)
    assert not person.can_sign_in
    person.status = UserStatus.ACTIVE  # a cancelled notice leaves the date behind: no effect
    assert person.can_sign_in


def test_the_next_request_carries_out_the_last_day_steps(rt, app, company, users):
    doc = company.document(company.customer("Acme"), grade=2)
    loan_id = company.loan(doc)
    token = users.token("sam")
    departure_id = _notice(rt, company, days_from_today(-1))
    sam = company.refresh("sam")
    assert not sam.can_sign_in and not sam.disabled
    # An anonymous request does not run it (it comes after CSRF and the guard)...
    assert app.test_client().get("/login").status_code == 200
    assert not company.refresh("sam").disabled
    # ...anybody's signed-in request does, in a unit of work of its own before the request's.
    someone = app.test_client()
    mark = company.head()
    login(someone, "adm")
    assert someone.get("/").status_code == 200
    sam = company.refresh("sam")
    assert sam.disabled
    with rt.db.session() as session:
        assert session.get(Loan, loan_id).status == "revoked"
        assert session.get(Departure, departure_id).offboarded_at is not None
    steps = [e for e in company.events(after=mark) if e.actor_name == "system"]
    assert [(e.action, e.actor_name) for e in steps] == [
        ("loan:revoke", "system"), ("token:revoke", "system"), ("user:disable", "system"),
        ("auth:sessions_end", "system"), ("departure:offboard", "system")]
    assert all(e.user_agent == "vault maintenance (on request)" for e in steps)
    assert json.loads(steps[-1].detail)["loans_revoked"] == 1
    assert ApiCaller(app, token, HOME.client_addr).call("GET", "/api/v1/me").status_code == 401


def _notice_on_the_page(app, company, person: str, *, notice: int, last: int, note: str = ""):
    """An administrator records `person`'s notice through the page (days counted from today); the signed-in
    client and the answer."""
    admin = app.test_client()
    login(admin, "adm")
    form = admin.get("/departures/new").get_data(as_text=True)
    return admin, admin.post("/departures/new", data={
        "csrf_token": csrf_from(form), "user": company.ids[person], "notice_date": days_from_today(notice).isoformat(),
        "last_day": days_from_today(last).isoformat(), "successor": "0", "note": note})


def test_a_notice_with_a_last_day_already_past_ends_everything_at_once(rt, app, company):
    admin, answer = _notice_on_the_page(app, company, "sam", notice=-3, last=-1)
    assert answer.status_code == 302
    sam = company.refresh("sam")
    assert sam.disabled and sam.status == "departing"
    assert [e.action for e in company.events("departure:offboard")] == ["departure:offboard"]
    page = admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert "access ended" in page and "The person owned no customers." in page


def test_the_admin_cannot_give_notice_for_themselves_on_the_page(app, company):
    admin = app.test_client()
    login(admin, "adm")
    form = admin.get("/departures/new").get_data(as_text=True)
    assert f'value="{company.ids["adm"]}"' not in form.split('name="user"')[1].split("</select>")[0]
    answer = admin.post("/departures/new", data={
        "csrf_token": csrf_from(form), "user": company.ids["adm"], "last_day": days_from_today(3).isoformat(),
        "successor": "0"})
    assert answer.status_code == 400
    assert company.events("departure:start") == []


def test_a_refused_notice_keeps_what_was_typed_and_says_why_beside_the_field(app, company):
    """A refusal for what was typed (a last day before the notice) led to a page whose way back opened an
    empty form: the person, the dates, the successor and the note were lost."""
    _admin, answer = _notice_on_the_page(app, company, "sam", notice=-1, last=-5, note="Leaves for a competitor")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "The last working day cannot be before the notice date." in page
    assert "Leaves for a competitor" in page and f'value="{days_from_today(-5).isoformat()}"' in page
    assert f'<option selected value="{company.ids["sam"]}"' in page
    assert company.events("departure:start") == []


def test_custodians_revoke_the_open_loans_of_people_on_notice(rt, app, company):
    docs = [company.document(company.customer(f"C{n}"), grade=2) for n in range(2)]
    leaver_loans = [company.loan(doc) for doc in docs]
    stayer_loan = company.loan(docs[0], borrower="tom")
    _notice(rt, company, days_from_today(10))
    kim = app.test_client()
    token = login(kim, "kim")
    page = kim.get("/departures/loans").get_data(as_text=True)
    assert all(f"/departures/loans/{loan}/revoke" in page for loan in leaver_loans)
    assert f"/departures/loans/{stayer_loan}/revoke" not in page
    revoked = kim.post(f"/departures/loans/{leaver_loans[0]}/revoke",
                       data={"csrf_token": token, "reason": "The borrower is leaving the company (notice given)."})
    assert revoked.status_code == 302
    with rt.db.session() as session:
        assert [session.get(Loan, loan).status for loan in leaver_loans] == ["revoked", "active"]
    (event,) = company.events("loan:revoke")
    assert (event.actor_name, event.loan_id, event.subject_user_id) == ("kim", leaver_loans[0], company.ids["sam"])
    # Not a leaver's loan: this page does not touch it.
    refused = kim.post(f"/departures/loans/{stayer_loan}/revoke", data={"csrf_token": token, "reason": "x" * 30})
    assert refused.status_code == 404
    with rt.db.session() as session:
        assert session.get(Loan, stayer_loan).status == "active"
    borrower = app.test_client()
    login(borrower, "tom")
    assert borrower.get("/departures/loans").status_code == 403


@pytest.fixture
def settings_overrides(request) -> dict[str, Any]:
    mode = request.node.get_closest_marker("policy")
    policy_sections = evening_policy()
    if mode:
        policy_sections.update(mode.args[0])
    return {"trusted_places": TRUSTED, "policy": policy_sections}


@pytest.mark.policy({"departure": {"on_notice": "refuse"}})
def test_with_on_notice_refuse_a_leaver_cannot_ask_for_important_files(rt, company):
    graded = company.document(company.customer("Acme"), grade=2)
    _notice(rt, company, days_from_today(10))
    mark = company.head()
    with pytest.raises(policy.Denied) as refused:
        company.request(graded)
    assert refused.value.decision.code == "departing_refused"
    assert company.events("loan:request", after=mark) == []
    with rt.db.session() as session:
        assert session.scalars(select(Loan)).all() == []


def test_with_the_default_a_leavers_request_needs_two_different_approvers(rt, company):
    graded = company.document(company.customer("Acme"), grade=2)
    _notice(rt, company, days_from_today(10))
    loan_id = company.request(graded)
    assert company.approve(loan_id, "ann").status == "requested"
    with pytest.raises(policy.Denied) as twice:
        company.approve(loan_id, "ann")
    assert twice.value.decision.code == "already_decided"
    assert company.approve(loan_id, "abe").status == "active"
