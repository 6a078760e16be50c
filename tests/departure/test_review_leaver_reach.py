"""A leaver's reach widened by a colleague who is not leaving: more views of a file than the notice's
stricter approvals would give, and a team's customers through a manager named after the notice."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from tests.departure.conftest import OFFICE, REASON, days_from_today
from tests.support.locks import interleaved, meanwhile, until_done_or_waiting
from vault import policy
from vault.models import Customer, Document, Loan, Role, utcnow
from vault.policy import visibility
from vault.services import departures, loans, managers, quota, todo


def _notice(rt, company, leaver: str = "sam") -> int:
    with rt.db.session() as session:
        return departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, leaver), last_day=days_from_today(10),
            successor=company.user(session, "sue"), ctx=OFFICE).id


def _set_quota(rt, company, document_id: int, views: int | None, actor: str = "kim", person: str = "sam") -> None:
    with rt.db.session() as session:
        loans.set_quota_override(rt, session, company.user(session, actor), session.get(Document, document_id),
                                 views, person=company.user(session, person), ctx=OFFICE)


def _limit(rt, company, document_id: int, person: str = "sam") -> int:
    with rt.db.session() as session:
        return quota.limit_for(rt.settings, session, company.ids[person],
                               session.get(Document, document_id))


def test_nobody_raises_the_view_quota_of_a_person_on_notice(rt, company):
    """On notice, more views of an important file need two approvers (an extension); a custodian's quota
    for the one person gave a thousand on their word alone. Lowering it, and clearing a raise given before
    the notice, still narrow the leaver's reach and stay open; a withdrawn notice gives the rule back."""
    customer = company.customer("Quota Trading", owner="tom")
    document = company.document(customer, grade=2)
    company.loan(document)
    _notice(rt, company)
    mark = company.head()
    for views in (1000, 4):
        with pytest.raises(policy.Denied) as refused:
            _set_quota(rt, company, document, views)
        assert refused.value.decision.code == "quota_person_departing"
    assert _limit(rt, company, document) == 3
    assert company.events("quota:override", after=mark) == []
    # The same number, or fewer: no wider reach.
    _set_quota(rt, company, document, 3)
    _set_quota(rt, company, document, 1)
    assert _limit(rt, company, document) == 1
    # Back to the grade's number from a lower one widens it again.
    with pytest.raises(policy.Denied):
        _set_quota(rt, company, document, None)
    # Someone who is not leaving is set as before.
    _set_quota(rt, company, document, 9, person="tom")
    assert _limit(rt, company, document, "tom") == 9


def test_a_raise_given_before_the_notice_can_be_taken_back(rt, company):
    document = company.document(company.customer("Early Quota", owner="tom"), grade=2)
    _set_quota(rt, company, document, 50)
    _notice(rt, company)
    _set_quota(rt, company, document, None)
    assert _limit(rt, company, document) == 3


def test_a_withdrawn_notice_gives_the_quota_back_to_the_custodians(rt, company):
    document = company.document(company.customer("Stays Ltd", owner="tom"), grade=2)
    departure_id = _notice(rt, company)
    with rt.db.session() as session:
        departures.withdraw(rt, session, company.user(session, "adm"), departures.get_departure(session, departure_id),
                            reason="Sam accepted the counter-offer", ctx=OFFICE)
    _set_quota(rt, company, document, 6)
    assert _limit(rt, company, document) == 6


def _name_manager(rt, company, person: str, manager: str) -> int:
    with rt.db.session() as session:
        request = managers.set_manager(rt, session, company.user(session, person), company.user(session, manager),
                                       actor=company.user(session, "adm"), ctx=OFFICE)
        assert request is not None
        return request.id


def _decide(rt, company, request_id: int, *, approve: bool) -> None:
    with rt.db.session() as session:
        managers.decide_manager_request(rt, session, managers.get_manager_request(session, request_id),
                                        approve=approve, actor=company.user(session, "adm2"), ctx=OFFICE)


def _sees(rt, company, who: str, customer_id: int) -> bool:
    with rt.db.session() as session:
        return bool(visibility.customer_visible(company.user(session, who), session.get(Customer, customer_id)))


@pytest.mark.parametrize("named", ["sam", "tom"])
def test_a_manager_named_after_the_notice_opens_no_team_to_the_leaver(rt, company, named):
    """Two administrators, neither leaving, put Sam (on notice) above a colleague with a book of customers,
    directly (Sam named) or through someone who reports to Sam (Tom named): Sam then saw, revealed and could
    copy every one of those customers in the last days. A request named before the notice and approved after
    it is the same decision. Refusing it stays open, and so does a manager who is not below the leaver."""
    company.users.make("adm2", Role.ADMIN)
    company.users.make("bea", Role.BORROWER)
    company.users.manage("sam", "tom")
    book = company.customer("Bea's Best Customer", owner="bea")
    early = _name_manager(rt, company, "bea", named)
    _notice(rt, company)
    assert not _sees(rt, company, "sam", book)
    with pytest.raises(policy.Denied) as refused:
        _decide(rt, company, early, approve=True)
    assert refused.value.decision.code == "manager_departing"
    with pytest.raises(policy.Denied) as asked:
        _name_manager(rt, company, "bea", named)
    assert asked.value.decision.code == "manager_departing"
    assert company.refresh("bea").manager_id is None and not _sees(rt, company, "sam", book)
    _decide(rt, company, early, approve=False)
    assert [json.loads(e.detail)["request_id"] for e in company.events("manager:refuse")] == [early]
    # Sue is not on notice, nor below anyone who is: naming her is the usual two-person decision.
    _decide(rt, company, _name_manager(rt, company, "bea", "sue"), approve=True)
    assert company.refresh("bea").manager_id == company.ids["sue"]
    assert _sees(rt, company, "sue", book) and not _sees(rt, company, "sam", book)


def _ask_extension(rt, company, document_id: int, views: int) -> int:
    with rt.db.session() as session:
        return loans.request_loan(
            rt, session, company.user(session, "sam"), session.get(Document, document_id), reason=REASON,
            category="visit_preparation", place="Head office", days=0, kind="extension", extra_views=views,
            ctx=OFFICE).id


def _extension(rt, company, document_id: int, views: int) -> int:
    """More views of a spent quota, asked by Sam and approved by as many approvers as the request needs."""
    extension_id = _ask_extension(rt, company, document_id, views)
    for approver in ("ann", "abe"):
        if company.approve(extension_id, approver).status != "requested":
            break
    return extension_id


def _views_left_at_home(rt, company, document_id: int) -> int:
    """What Sam's home page says is left of the file (it counts the extensions on its own)."""
    with rt.db.session() as session:
        held = todo.todo_for(rt, session, company.user(session, "sam")).loans
        return next(item.views_left for item in held if item.loan.document_id == document_id)


def _views_until_refused(company, document_id: int) -> int:
    """Views Sam opens of the file before the quota refuses one; the refusal must be the quota's."""
    opened = 0
    while True:
        try:
            company.view(document_id)
        except policy.Denied as refused:
            assert refused.decision.code == "quota_exhausted"
            return opened
        opened += 1
        assert opened < 50


def test_an_extension_approved_before_the_notice_stays_inside_its_ceiling(rt, company):
    """A raise of Sam's quota given before the notice no longer lifts them above the notice's ceiling; an
    extension approved before it (more views on a colleague's approval, under the rules for someone not
    leaving) lifted them still: its views counted on top of the ceiling for the whole notice. They now count
    inside it while the notice runs; an extension approved during the notice, with the notice's approvals,
    still adds above it, and a withdrawn notice gives the earlier extension's views back."""
    document = company.document(company.customer("Extended Trading", owner="tom"), grade=2)
    company.loan(document)
    _set_quota(rt, company, document, 1)  # one view of Sam's own, below the grade's 3
    assert _views_until_refused(company, document) == 1
    _extension(rt, company, document, 4)
    assert _limit(rt, company, document) == 5
    company.view(document)  # 2 of 5 spent before the notice
    departure_id = _notice(rt, company)
    # The ceiling is the grade's 3: one, own quota and early extension together, and no more.
    assert _limit(rt, company, document) == 3
    assert _views_left_at_home(rt, company, document) == 1
    assert _views_until_refused(company, document) == 1
    assert _limit(rt, company, document) == 3
    # More views on notice are an extension the notice's approvals decide: its views go above the ceiling.
    extension_id = _extension(rt, company, document, 2)
    with rt.db.session() as session:
        assert session.get(Loan, extension_id).approvals_required >= 2
    assert _limit(rt, company, document) == 5
    assert _views_left_at_home(rt, company, document) == 2
    assert _views_until_refused(company, document) == 2
    opened = [json.loads(e.detail)["limit"] for e in company.events("document:view", outcome="allowed")]
    assert opened[-3:] == [3, 5, 5]
    # A withdrawn notice lifts the ceiling: own quota 1, the two extensions 4 and 2.
    with rt.db.session() as session:
        departures.withdraw(rt, session, company.user(session, "adm"), departures.get_departure(session, departure_id),
                            reason="Sam accepted the counter-offer", ctx=OFFICE)
    assert _limit(rt, company, document) == 7
    assert _views_until_refused(company, document) == 2


def _own_view_spent_and_more_asked(rt, company, customer: str) -> tuple[int, int]:
    """A grade-2 file of `customer` on loan to Sam, his own quota of one view spent, and an extension of
    four more views asked (not yet approved): the document's and the extension's ids."""
    document = company.document(company.customer(customer, owner="tom"), grade=2)
    company.loan(document)
    _set_quota(rt, company, document, 1)
    assert _views_until_refused(company, document) == 1
    return document, _ask_extension(rt, company, document, 4)


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_an_extension_approved_while_the_notice_is_recorded_is_judged_by_the_notice(rt, company, db_backend):
    """An approval racing the recording of a notice read Sam as not leaving (one approval enough) and was
    stamped after the notice began: its views then counted above the notice's ceiling though no second
    approver had looked. The approval now waits for the notice being recorded and is judged by its rules
    (SQLite takes one writer at a time; this is PostgreSQL's case)."""
    document, extension_id = _own_view_spent_and_more_asked(rt, company, "Racing Trading")
    approved: list[Loan] = []
    meanwhile(rt, lambda notice: departures.start_departure(
        rt, notice, company.user(notice, "adm"), company.user(notice, "sam"), last_day=days_from_today(10),
        successor=company.user(notice, "sue"), ctx=OFFICE),
        lambda: approved.append(company.approve(extension_id, "ann")))
    assert approved
    with rt.db.session() as session:
        extension = session.get(Loan, extension_id)
        # Judged by the notice's rules: one approval of the two it now needs.
        assert (extension.status, extension.approvals_required) == ("requested", 2)
    # Sam's own quota of one, spent; the extension's views wait for the second approval the notice asks.
    assert _limit(rt, company, document) == 1
    assert _views_until_refused(company, document) == 0
    assert company.approve(extension_id, "abe").status == "approved"
    assert _limit(rt, company, document) == 5



@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_an_approval_between_a_notices_clock_and_its_commit_waits_for_it(rt, company, db_backend, monkeypatch):
    """The other side of the race: the notice read the clock for its start, an approval read Sam as not
    leaving and committed (stamped after that start), then the notice committed: the extension counted above
    the ceiling on one approval. The notice now holds Sam's row before it reads the clock, so the approval
    waits for it and is judged by the notice's rules. The approval is run at the moment the notice reads
    the clock, the one interleaving the test cannot bring about from outside."""
    document, extension_id = _own_view_spent_and_more_asked(rt, company, "Clocked Trading")
    approvals: list[threading.Thread] = []
    clock = departures.utcnow

    def approval_at_the_clock():
        now = clock()
        if not approvals:
            approvals.append(threading.Thread(target=lambda: company.approve(extension_id, "ann")))
            approvals[0].start()
            until_done_or_waiting(rt, approvals[0])
        return now

    monkeypatch.setattr(departures, "utcnow", approval_at_the_clock)
    _notice(rt, company)
    approvals[0].join(timeout=30)
    assert not approvals[0].is_alive()
    with rt.db.session() as session:
        extension = session.get(Loan, extension_id)
        assert (extension.status, extension.approvals_required) == ("requested", 2)
    assert _limit(rt, company, document) == 1


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_an_approval_and_the_last_day_take_their_locks_in_one_order(rt, company, db_backend, monkeypatch):
    """The last day's steps lock the leaver's loans, then change the person (the account disabled); an
    approval now also holds the person (`quota.hold_notice`). Taken in the other order (the person first)
    the two waited for each other and the database ended one of them. The approval takes the loan first:
    the last day waits for it, then revokes the loan. The last day is run at the moment the approval holds
    the person, the one interleaving the test cannot bring about from outside."""
    document = company.document(company.customer("Locked Trading", owner="tom"), grade=2)
    loan_id = company.request(document)
    departure_id = _notice(rt, company)
    failures: list[BaseException] = []

    def last_day() -> None:
        try:
            with rt.db.session() as session:
                departures.offboard(rt, session, departures.get_departure(session, departure_id), ctx=OFFICE)
        except BaseException as exc:
            failures.append(exc)

    steps: list[threading.Thread] = []
    hold = quota.hold_notice

    def last_day_while_held(session, person, **options):
        held = hold(session, person, **options)
        if not steps:
            steps.append(threading.Thread(target=last_day))
            steps[0].start()
            until_done_or_waiting(rt, steps[0])
        return held

    monkeypatch.setattr(quota, "hold_notice", last_day_while_held)
    company.approve(loan_id, "ann")
    steps[0].join(timeout=30)
    assert not steps[0].is_alive() and failures == []
    with rt.db.session() as session:
        assert session.get(Loan, loan_id).status == "revoked"


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_a_withdrawal_waiting_for_a_completion_finds_the_departure_closed(rt, company, db_backend):
    """An administrator completed Sam's departure while the operator withdrew it. The withdrawal read the
    departure open, waited for the completion's writes, then carried on: Sam "active" again and the
    completed departure deleted, with both records in the log. Every step of a departure now reads it
    locked: the withdrawal is refused as closed, and Sam stays departed."""
    departure_id = _notice(rt, company)
    outcome: list[object] = []

    def withdraw() -> None:
        with rt.db.session() as session:
            departure = departures.get_departure(session, departure_id)
            assert departure.is_open  # read before the wait, as the page reads it
            try:
                departures.withdraw(rt, session, None, departure, reason="Sam accepted the counter-offer",
                                    ctx=OFFICE)
                outcome.append("withdrawn")
            except policy.Denied as exc:
                outcome.append(exc.decision.code)

    meanwhile(rt, lambda session: departures.complete(rt, session, company.user(session, "adm"),
                                                      departures.get_departure(session, departure_id), ctx=OFFICE),
              withdraw)
    assert outcome == ["departure_closed"]
    with rt.db.session() as session:
        assert departures.get_departure(session, departure_id).status == "completed"
        assert company.user(session, "sam").status == "departed"


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("settings_overrides", [{"audit_shards": 1}])
def test_the_last_day_meeting_a_revocation_waits_instead_of_deadlocking(rt, company, db_backend, settings_overrides):
    """Kim was revoking one of Sam's two loans (the loan locked, her record not yet written) when the sweep
    ran Sam's last-day steps. The sweep revoked the other loan, writing its record (which holds the head of
    its chain until the commit), then waited for Kim's; Kim's record waited for that head, and the database
    ended one of them. The sweep now locks every loan it ends before it writes any record."""
    account = company.customer("Acme")
    first, second = (company.loan(company.document(account, grade=2, title=title)) for title in ("Plan", "Prices"))
    _notice(rt, company)
    later = utcnow() + timedelta(days=11)
    outcome: list[object] = []

    def sweep() -> None:
        try:
            with rt.db.session() as session:
                outcome.append([d.user_id for d in departures.run_due(rt, session, ctx=OFFICE, now=later)])
        except Exception as exc:
            outcome.append(exc)

    interleaved(rt, lambda session: loans.lock_loan(session, session.get(Loan, second)), sweep,
                lambda session, loan: loans.revoke(rt, session, company.user(session, "kim"), loan,
                                                   reason="The visit was cancelled", ctx=OFFICE))
    assert outcome == [[company.ids["sam"]]]
    with rt.db.session() as session:
        assert [(session.get(Loan, i).status, session.get(Loan, i).closed_by_id) for i in (first, second)] == [
            ("revoked", None), ("revoked", company.ids["kim"])]


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("step", ["start", "update"])
def test_a_last_day_already_past_meeting_an_approval_waits_instead_of_deadlocking(rt, company, db_backend, step):
    """Ann was approving Sam's request (the loan locked) when Sam's notice was recorded with a last day already
    past (or his last day moved into the past). The notice locked Sam's row, then its last-day steps waited
    for the loan to end it; Ann's approval waited for Sam's row to read whether he is leaving: each held
    what the other waited for. A notice that ends access at once now takes Sam's open loans first, in the
    order approvals take them (the loan, then the person): it waits for Ann, then ends the loan."""
    loan_id = company.request(company.document(company.customer("Acme"), grade=2))
    departure_id = None
    if step == "update":
        with rt.db.session() as session:
            departure_id = departures.start_departure(
                rt, session, company.user(session, "adm"), company.user(session, "sam"),
                last_day=days_from_today(10), notice_date=days_from_today(-5),
                successor=company.user(session, "sue"), ctx=OFFICE).id
    outcome: list[object] = []

    def late() -> None:
        try:
            with rt.db.session() as session:
                adm, sam = company.user(session, "adm"), company.user(session, "sam")
                if step == "start":
                    departures.start_departure(rt, session, adm, sam, last_day=days_from_today(-1),
                                               notice_date=days_from_today(-5), successor=company.user(session, "sue"),
                                               ctx=OFFICE)
                else:
                    departures.update_departure(rt, session, adm, departures.get_departure(session, departure_id),
                                                last_day=days_from_today(-1), ctx=OFFICE)
                departures.run_due(rt, session, ctx=OFFICE)
            outcome.append("done")
        except Exception as exc:
            outcome.append(exc)

    def approve(session: Any, loan: Loan) -> None:
        try:
            loans.approve(rt, session, company.user(session, "ann"), loan, comment="fine", ctx=OFFICE)
            outcome.append("approved")
        except Exception as exc:
            outcome.append(exc)
            session.rollback()

    interleaved(rt, lambda session: loans.lock_loan(session, session.get(Loan, loan_id)), late, approve)
    assert outcome == ["approved", "done"]
    with rt.db.session() as session:
        assert session.get(Loan, loan_id).status == "revoked"
