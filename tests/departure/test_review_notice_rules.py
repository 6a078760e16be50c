"""Notice rules found wanting by the attack review: stricter approvals for requests filed before the
notice (finding 10), and a successor who has since given notice (finding 12)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.departure.conftest import OFFICE, days_from_today
from vault import policy
from vault.models import HandoverItem, Loan
from vault.services import departures


def _notice(rt, company, leaver: str, successor: str | None) -> int:
    with rt.db.session() as session:
        return departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, leaver), last_day=days_from_today(10),
            successor=company.user(session, successor) if successor else None, notice_date=days_from_today(0),
            ctx=OFFICE).id


def test_a_request_filed_before_the_notice_needs_the_stricter_approvals(rt, company):
    """Finding 10: a grade-2 request made the day before the notice got through on one approval."""
    document = company.document(company.customer("Early Bird"), grade=2)
    loan_id = company.request(document)
    _notice(rt, company, "sam", "sue")
    first = company.approve(loan_id, "ann")
    assert first.status == "requested"
    with rt.db.session() as session:
        assert session.get(Loan, loan_id).approvals_required == 2
    second = company.approve(loan_id, "abe")
    assert second.status == "active"
    details = [json.loads(e.detail) for e in company.events("loan:approve")]
    assert [(d["approvals"], d["approvals_required"]) for d in details] == [(1, 2), (2, 2)]


def test_a_successor_who_has_since_given_notice_cannot_confirm_handovers(rt, company):
    """Finding 12: Sue took Sam's key customer, then gave notice herself; her confirmation is refused,
    and an approver can still waive it so Sam's departure completes."""
    vip = company.customer("Vip Holdings", "vip")
    sam_departure = _notice(rt, company, "sam", "sue")
    _notice(rt, company, "sue", "tom")
    mark = company.head()
    with rt.db.session() as session:
        item = session.scalar(select(HandoverItem).where(HandoverItem.departure_id == sam_departure,
                                                         HandoverItem.customer_id == vip))
        with pytest.raises(policy.Denied) as refused:
            departures.confirm_contact(rt, session, company.user(session, "sue"), item,
                                       contact_date=days_from_today(0), note="Called the buyer myself", ctx=OFFICE)
    assert refused.value.decision.code == "successor_departing"
    assert company.events("handover:confirm", after=mark) == []
    with rt.db.session() as session:
        waived = departures.override(rt, session, company.user(session, "ann"),
                                     departures.get_departure(session, sam_departure),
                                     reason="Sue is leaving as well; Tom called the buyer", ctx=OFFICE)
        assert [i.customer_id for i in waived] == [vip]


def test_a_notice_withdrawn_on_the_page_restores_normal_policy(rt, app, company):
    """"A notice cannot be withdrawn": the departure page's button restores the normal rules, audited."""
    from tests.conftest import csrf_from, login

    customer = company.customer("Stay Ltd")
    departure_id = _notice(rt, company, "sam", "sue")
    browser = app.test_client()
    login(browser, "adm")
    page = browser.get(f"/departures/{departure_id}")
    assert page.status_code == 200 and "Withdraw the notice" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    short = browser.post(f"/departures/{departure_id}/withdraw", data={"csrf_token": token, "reason": "no"})
    assert short.status_code == 403 and company.refresh("sam").status == "departing"
    done = browser.post(f"/departures/{departure_id}/withdraw",
                        data={"csrf_token": token, "reason": "Sam accepted the counter-offer"})
    assert done.status_code == 302
    assert company.refresh("sam").status == "active" and company.refresh("sam").last_day is None
    with rt.db.session() as session:
        from vault.models import Customer

        assert session.get(Customer, customer).owner_id == company.ids["sam"]
    assert [e.actor_name for e in company.events("departure:withdraw")] == ["adm"]
    # Normal policy again: one approval suffices for a grade-2 loan.
    document = company.document(customer, grade=2)
    assert company.approve(company.request(document), "ann").status == "active"


def test_a_notice_cannot_be_withdrawn_after_the_last_day(rt, company):
    with rt.db.session() as session:
        departure = departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, "sam"), last_day=days_from_today(-1),
            successor=company.user(session, "sue"), notice_date=days_from_today(-3), ctx=OFFICE)
        with pytest.raises(policy.Denied) as refused:
            departures.withdraw(rt, session, company.user(session, "adm"), departure,
                                reason="Changed our mind about it", ctx=OFFICE)
    assert refused.value.decision.code == "already_offboarded"
