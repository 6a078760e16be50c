"""Work queues that respect people's time: the next request after a decision, several approved with one
comment (each still judged alone), what a loan will allow, the custody queue's context, confirmed
releases and revokes, closed acts that say why, errors beside their field, withdrawal, trusted-place
warnings and paginated lists. Refusals are checked as closely as successes.
"""

from __future__ import annotations

import html
import json
import re
import threading
from dataclasses import replace

import pytest
from sqlalchemy import select

from tests.loans.helpers import loan_rows, one_loan
from tests.support.locks import meanwhile, until_done_or_waiting
from vault.config.settings import DEFAULT_GRADES
from vault.core.context import AccessContext
from vault.models import Document, Loan, LoanStatus, User
from vault.services import departures
from vault.services import loans as loans_service

TWO_APPROVERS = {"grades": {**DEFAULT_GRADES, 2: replace(DEFAULT_GRADES[2], approvals=2)}}
TRUSTED = {"trusted_places": "Head office=10.1.0.0/16"}
INSIDE = {"REMOTE_ADDR": "10.1.2.3"}
OUTSIDE = {"REMOTE_ADDR": "192.0.2.7"}


def _requests(world, rt, *docs, borrower="ann"):
    """One request per document, by `borrower`; their ids in the same order."""
    browser = world.browser(borrower)
    ids = []
    for doc in docs:
        assert browser.request_loan(doc).status_code == 302
        ids.append(loan_rows(rt, document_id=doc)[-1].id)
    return ids


def _named(rt, *loan_ids) -> list[tuple[str, str, str]]:
    """(borrower, file, customer) of each loan, as a decision's message names them."""
    with rt.db.session() as session:
        loans = [session.get(Loan, loan_id) for loan_id in loan_ids]
        return [(loan.borrower.display_name or loan.borrower.username, loan.document.title,
                 loan.document.customer.name) for loan in loans]


def _flashes(response) -> list[str]:
    return [re.sub(r"\s+", " ", text).strip()
            for text in re.findall(r'<p class="flash [^"]*" role="status">(.*?)</p>', response.get_data(as_text=True),
                                   re.S)]


# -- after a decision, the next request ------------------------------------------------------------------


def test_a_decision_leads_to_the_next_request_then_back_to_the_queue(world, rt):
    first, second = _requests(world, rt, world.document(2), world.document(2))
    paula = world.browser("paula")
    named = _named(rt, first, second)
    approved = paula.decide(first, "approve", comment="Fine")
    assert approved.status_code == 302
    assert approved.headers["Location"].endswith(f"/loans/{second}")
    # The message names the request decided, since the page now shows the next one.
    said = html.unescape(" ".join(_flashes(paula.get(approved.headers["Location"]))))
    assert "Your approval of {}'s request for {} ({}) is recorded. Here is the next request.".format(*named[0]) in said
    rejected = paula.decide(second, "reject", comment="Not for this visit")
    assert rejected.headers["Location"].endswith("/loans/approvals")
    said = html.unescape(" ".join(_flashes(paula.get("/loans/approvals"))))
    assert "{}'s request for {} ({}) is rejected. Nothing else is waiting for you.".format(*named[1]) in said
    assert (one_loan(rt, id=first).status, one_loan(rt, id=second).status) == (LoanStatus.ACTIVE,
                                                                               LoanStatus.REJECTED)


def test_the_next_request_skips_those_the_approver_may_not_decide(world, rt):
    own_file = world.document(2, compiler="cam")
    theirs, other = world.document(2), world.document(2)
    first, skipped, last = _requests(world, rt, theirs, own_file, other)
    response = world.browser("cam").decide(first, "approve")
    assert response.headers["Location"].endswith(f"/loans/{last}")  # not his own file's request
    assert one_loan(rt, id=skipped).status == LoanStatus.REQUESTED


# -- several with one comment ------------------------------------------------------------------------------


def test_batch_approval_judges_each_loan_alone(world, rt):
    own_file = world.document(2, compiler="cam")
    mine_ids = _requests(world, rt, own_file, world.document(2))
    theirs = _requests(world, rt, world.document(3), borrower="bob")
    cam = world.browser("cam")
    audit = world.audit.mark()
    response = cam.post("/loans/approvals", {"loan": [*mine_ids, *theirs, 999_999], "comment": "Visits agreed"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/loans/approvals")
    refused_own, fine = mine_ids
    assert one_loan(rt, id=refused_own).status == LoanStatus.REQUESTED
    assert one_loan(rt, id=fine).status == LoanStatus.ACTIVE
    assert one_loan(rt, id=theirs[0]).status == LoanStatus.APPROVED  # grade 3 waits for its release
    allowed = audit.since("loan:approve", "allowed")
    assert sorted((e.loan_id, e.actor_name, e.reason_text) for e in allowed) == [
        (fine, "cam", "Visits agreed"), (theirs[0], "cam", "Visits agreed")]
    denied = audit.since(outcome="denied")
    assert [(e.action, e.loan_id, e.reason_code, e.actor_name) for e in denied] == [
        ("loan:approve", refused_own, "separation_of_duties", "cam"),
        ("loan:approve", 999_999, "not_found", "cam")]
    said = " ".join(_flashes(cam.get("/loans/approvals")))
    assert "2 requests approved" in said
    assert f"Request #{refused_own} was not approved: The compiler of a file cannot decide on loans of it." in said
    assert "Request #999999 was not approved: No such item" in said


def test_the_queue_shows_a_closed_box_with_its_reason(world, rt):
    _requests(world, rt, world.document(2, compiler="cam"))
    page = world.browser("cam").get("/loans/approvals").get_data(as_text=True)
    assert '<input type="checkbox" disabled' in page
    assert 'class="why-disabled">The compiler of a file cannot decide on loans of it.' in page
    assert "none of these is yours to decide." in page  # and the batch button is not offered


@pytest.mark.parametrize(("data", "words"), [
    ({"comment": "All fine"}, "Tick at least one request."),
    ({"loan": "abc"}, "Choose requests from the list."),
    ({"loan": "-3"}, "Choose requests from the list."),
    ({"loan": [str(n) for n in range(1, 52)]}, "Choose at most 50 requests at once."),
    ({"loan": "1", "comment": "x\x00y"}, "Remove the control characters"),
])
def test_a_bad_batch_comes_back_with_the_error_beside_the_boxes(world, rt, data, words):
    (loan_id,) = _requests(world, rt, world.document(2))
    paula = world.browser("paula")
    audit = world.audit.mark()
    response = paula.post("/loans/approvals", data)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    # Nothing decided, nothing refused: the one record is the queue shown again (`loan:queue`).
    assert [event.action for event in audit.since()] == ["loan:queue"]
    assert one_loan(rt, id=loan_id).status == LoanStatus.REQUESTED


def test_batch_approval_is_for_approvers_only(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    audit = world.audit.mark()
    assert world.browser("bob").post("/loans/approvals", {"loan": str(loan_id)}).status_code == 403
    audit.one_refusal("loan:approve", "not_permitted", "bob")
    assert one_loan(rt, id=loan_id).status == LoanStatus.REQUESTED


# -- what the loan will allow ---------------------------------------------------------------------------


def test_the_decision_page_says_what_the_loan_will_allow(world, rt):
    (grade2,) = _requests(world, rt, world.document(2))
    (grade3,) = _requests(world, rt, world.document(3), borrower="bob")
    paula = world.browser("paula")
    page = paula.get(f"/loans/{grade2}").get_data(as_text=True)
    assert "What this loan will allow" in page
    assert "3 views in all, over 5 days" in page and "downloads allowed, as a stamped copy" in page
    assert "your approval decides it" in page and "then a custodian releases it" not in page
    page = paula.get(f"/loans/{grade3}").get_data(as_text=True)
    assert "no downloads: reading in the viewer only" in page and "opens only from a trusted place" in page
    assert "then a custodian releases it" in page


@pytest.fixture
def settings_overrides(request):
    return getattr(request, "param", {})


@pytest.mark.parametrize("settings_overrides", [TWO_APPROVERS], indirect=True)
def test_the_decision_page_says_a_second_approver_is_needed(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    assert "needs 1 more approver after yours" in world.browser("paula").get(f"/loans/{loan_id}").get_data(
        as_text=True)
    world.browser("paula").decide(loan_id, "approve")
    assert "your approval decides it" in world.browser("quinn").get(f"/loans/{loan_id}").get_data(as_text=True)


def _allows(page: str) -> str:
    """The text of the page's "What this loan will allow" list, spaces folded."""
    found = re.search(r'<ul class="allows">(.*?)</ul>', page, re.S)
    assert found, "the page says nothing of what the loan will allow"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def test_only_a_person_who_may_approve_is_told_their_approval_decides_it(world, rt):
    # Was: the custodian releasing a grade-3 loan, and the borrower reading their own request, were told
    # "your approval decides it", which was never theirs to give.
    (loan_id,) = _requests(world, rt, world.document(3))
    assert "your approval decides it; then a custodian releases it" in _allows(
        world.browser("paula").get(f"/loans/{loan_id}").get_data(as_text=True))
    own = _allows(world.browser("ann").get(f"/loans/{loan_id}").get_data(as_text=True))
    assert "your approval" not in own and "waits for 1 more approval; then a custodian releases it" in own
    world.browser("paula").decide(loan_id, "approve")
    custody = _allows(world.browser("cora").get(f"/loans/{loan_id}").get_data(as_text=True))
    assert "your approval" not in custody and "approved; waits for a custodian to release it" in custody


@pytest.mark.parametrize("settings_overrides", [TWO_APPROVERS], indirect=True)
def test_an_approver_who_has_approved_is_told_how_many_approvals_are_missing(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    world.browser("paula").decide(loan_id, "approve")
    again = _allows(world.browser("paula").get(f"/loans/{loan_id}").get_data(as_text=True))
    assert "your approval" not in again and "after yours" not in again and "waits for 1 more approval" in again


# -- the custody queue ------------------------------------------------------------------------------------


def test_the_custody_queue_shows_reason_customer_and_history_with_that_customer(world, rt):
    doc = world.document(3)
    (earlier,) = _requests(world, rt, doc)
    world.browser("paula").decide(earlier, "reject", comment="Not this week")
    (loan_id,) = _requests(world, rt, doc, borrower="ann")
    world.browser("paula").decide(loan_id, "approve")
    page = world.browser("cora").get("/loans/custody").get_data(as_text=True)
    loan = one_loan(rt, id=loan_id)
    with rt.db.session() as session:
        from_db = loans_service.customer_history(session, session.get(type(loan), loan_id))
        customer = session.get(type(loan), loan_id).document.customer.name
    assert from_db.loans == 1  # the rejected request, on the same customer
    assert loan.reason in page and customer in page
    assert f"{from_db.loans} earlier loans, {from_db.views} views, {from_db.refusals} refusals" in page


# -- confirmations ----------------------------------------------------------------------------------------


def test_a_release_needs_its_box_ticked_and_the_server_checks_it(world, rt):
    (loan_id,) = _requests(world, rt, world.document(3))
    world.browser("paula").decide(loan_id, "approve")
    cora = world.browser("cora")
    audit = world.audit.mark()
    response = cora.decide(loan_id, "release", confirm=None)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'id="release-confirm".*?Tick the box to confirm\.', page, re.S)
    # Nothing of the release; only the read of the loan page the answer shows again stands.
    assert [e.action for e in audit.since()] == ["loan:read"] and one_loan(rt, id=loan_id).status == LoanStatus.APPROVED
    assert cora.decide(loan_id, "release").status_code == 302
    audit.one_success("loan:release", "cora", loan_id=loan_id)


def test_an_unconfirmed_release_by_the_wrong_person_is_still_a_refusal(world, rt):
    (loan_id,) = _requests(world, rt, world.document(3))
    world.browser("val").decide(loan_id, "approve")
    audit = world.audit.mark()
    response = world.browser("val").decide(loan_id, "release", confirm=None)
    assert response.status_code == 403
    audit.one_refusal("loan:release", "separation_of_duties", "val", loan_id=loan_id)


def test_a_revoke_needs_its_box_ticked(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    world.browser("paula").decide(loan_id, "approve")
    cora = world.browser("cora")
    audit = world.audit.mark()
    response = cora.decide(loan_id, "revoke", reason="The customer asked us to stop", confirm=None)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'id="revoke-confirm".*?Tick the box to confirm\.', page, re.S)
    assert "The customer asked us to stop" in page  # what was typed stays typed
    assert [e.action for e in audit.since()] == ["loan:read"] and one_loan(rt, id=loan_id).status == LoanStatus.ACTIVE


# -- errors beside their field ----------------------------------------------------------------------------


def test_a_reject_without_a_comment_says_so_beside_the_comment(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    audit = world.audit.mark()
    response = world.browser("paula").decide(loan_id, "reject", comment="  ")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert re.search(r'id="reject-comment"[^>]*>[^<]*</textarea>\s*<p class="errors" role="alert">Say why you reject',
                     page)
    audit.one_refusal("loan:reject", "comment_required", "paula", loan_id=loan_id)
    assert one_loan(rt, id=loan_id).status == LoanStatus.REQUESTED


def test_a_poor_revoke_reason_says_so_beside_the_reason(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    world.browser("paula").decide(loan_id, "approve")
    audit = world.audit.mark()
    response = world.browser("cora").decide(loan_id, "revoke", reason="bad")
    assert response.status_code == 403
    assert re.search(r'id="revoke-reason"[^>]*>\s*bad</textarea>\s*<p class="errors" role="alert">Give a reason',
                     response.get_data(as_text=True))
    audit.one_refusal("loan:revoke", "reason_too_short", "cora", loan_id=loan_id)


def test_a_request_refused_for_its_reason_says_so_beside_the_reason(world, rt):
    doc = world.document(2)
    response = world.browser("ann").request_loan(doc, reason="too short")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    # Beside the field, tied to it; announced once, by the form's error summary (test_request_form_pages.py).
    assert re.search(r'name="reason"[^>]*>\s*too short</textarea>\s*<p class="muted hint">[^<]*</p>\s*'
                     r'<p class="errors" id="reason-error-1">Give a reason of at least 10', page)
    assert re.search(r'role="alert" id="error-summary">\s*<p>[^<]*</p>\s*<ul>\s*'
                     r'<li><a href="#reason">Give a reason', page)


# -- a closed act says why -----------------------------------------------------------------------------------


def test_a_closed_act_is_a_disabled_button_with_its_reason(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2, compiler="cam"))
    page = world.browser("cam").get(f"/loans/{loan_id}").get_data(as_text=True)
    assert re.search(r'<button type="button" disabled[^>]*>Approve</button><span class="why-disabled">The compiler',
                     page)
    assert f'action="/loans/{loan_id}/approve"' not in page


# -- withdrawal ------------------------------------------------------------------------------------------


def test_the_borrower_withdraws_a_pending_request(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    ann = world.browser("ann")
    assert "Withdraw my request" in ann.get(f"/loans/{loan_id}").get_data(as_text=True)
    audit = world.audit.mark()
    response = ann.post(f"/loans/{loan_id}/withdraw")
    assert response.status_code == 302 and response.headers["Location"].endswith("/loans")
    loan = one_loan(rt, id=loan_id)
    assert (loan.status, loan.closed_by_id) == (LoanStatus.WITHDRAWN, world.ids["ann"])
    audit.one_success("loan:withdraw", "ann", loan_id=loan_id)
    assert "withdrawn" in ann.get("/loans").get_data(as_text=True)
    assert "Nothing is waiting for you." in world.browser("paula").get("/loans/approvals").get_data(as_text=True)
    # and the document can be asked for again
    assert ann.request_loan(loan.document_id).status_code == 302


def test_nobody_else_withdraws_a_request(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    audit = world.audit.mark()
    # another borrower does not even see it
    assert world.browser("bob").post(f"/loans/{loan_id}/withdraw").status_code == 404
    audit.one_refusal("loan:withdraw", "not_found", "bob", loan_id=loan_id)
    # an approver who also borrows sees it, and is refused by the rule
    audit.mark()
    assert world.browser("abby").post(f"/loans/{loan_id}/withdraw").status_code == 403
    audit.one_refusal("loan:withdraw", "not_your_request", "abby", loan_id=loan_id)
    # an approver who does not borrow has no such act
    audit.mark()
    assert world.browser("paula").post(f"/loans/{loan_id}/withdraw").status_code == 403
    audit.one_refusal("loan:withdraw", "not_permitted", "paula")
    assert one_loan(rt, id=loan_id).status == LoanStatus.REQUESTED


def test_a_decided_or_active_request_is_not_withdrawn(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    world.browser("paula").decide(loan_id, "approve")
    ann = world.browser("ann")
    audit = world.audit.mark()
    assert ann.post(f"/loans/{loan_id}/withdraw").status_code == 403
    audit.one_refusal("loan:withdraw", "invalid_state", "ann", loan_id=loan_id)
    assert one_loan(rt, id=loan_id).status == LoanStatus.ACTIVE


@pytest.mark.parametrize("settings_overrides", [TWO_APPROVERS], indirect=True)
def test_a_request_with_one_approval_of_two_is_not_withdrawn(world, rt):
    (loan_id,) = _requests(world, rt, world.document(2))
    world.browser("paula").decide(loan_id, "approve")
    ann = world.browser("ann")
    page = ann.get(f"/loans/{loan_id}").get_data(as_text=True)
    assert re.search(r'disabled[^>]*>Withdraw my request</button><span class="why-disabled">Someone has already', page)
    audit = world.audit.mark()
    assert ann.post(f"/loans/{loan_id}/withdraw").status_code == 403
    audit.one_refusal("loan:withdraw", "already_decided_withdraw", "ann", loan_id=loan_id)
    assert one_loan(rt, id=loan_id).status == LoanStatus.REQUESTED


# -- trusted places ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [TRUSTED], indirect=True)
def test_grade3_warnings_when_the_borrower_is_not_in_a_trusted_place(world, rt):
    doc = world.document(3)
    outside = world.browser("ann", **OUTSIDE)
    assert "You are not in a trusted place now" in outside.get(f"/documents/{doc}/loans/new").get_data(as_text=True)
    response = outside.request_loan(doc)
    assert response.status_code == 302
    assert "You are not in a trusted place now" in " ".join(_flashes(outside.get(response.headers["Location"])))
    loan_id = one_loan(rt, document_id=doc).id
    warning = "The borrower was last seen outside every trusted place"
    assert warning in world.browser("paula").get(f"/loans/{loan_id}").get_data(as_text=True)
    assert warning in world.browser("paula").get("/loans/approvals").get_data(as_text=True)
    world.browser("paula").decide(loan_id, "approve")
    assert warning in world.browser("cora").get("/loans/custody").get_data(as_text=True)
    # once the borrower has been seen inside, the warning goes
    world.browser("ann", **INSIDE).get("/loans")
    with rt.db.session() as session:
        _seen, place = loans_service.last_known_place(session, world.ids["ann"])
    assert place == "Head office"  # signing in is recorded with its place
    assert warning not in world.browser("cora").get("/loans/custody").get_data(as_text=True)


@pytest.mark.parametrize("settings_overrides", [TRUSTED], indirect=True)
def test_no_warning_inside_or_below_grade3(world, rt):
    doc3, doc2 = world.document(3), world.document(2)
    inside = world.browser("ann", **INSIDE)
    assert "You are not in a trusted place now" not in inside.get(f"/documents/{doc3}/loans/new").get_data(
        as_text=True)
    inside.request_loan(doc3)
    world.browser("bob", **OUTSIDE).request_loan(doc2)
    paula = world.browser("paula")
    for loan in loan_rows(rt):
        assert "last seen outside" not in paula.get(f"/loans/{loan.id}").get_data(as_text=True)


# -- pages of loans -------------------------------------------------------------------------------------------


def test_loan_lists_are_paginated_in_sql(world, rt):
    ids = _requests(world, rt, world.document(2), world.document(2), world.document(2))
    with rt.db.session() as session:
        ann = session.get(User, world.ids["ann"])
        first = loans_service.page_of_loans(session, ann, mine=True, page_size=2)
        second = loans_service.page_of_loans(session, ann, mine=True, page_size=2, page=2)
        beyond = loans_service.page_of_loans(session, ann, mine=True, page_size=2, page=99)
    assert (first.total, first.pages, [loan.id for loan in first.loans]) == (3, 2, [ids[2], ids[1]])
    assert [loan.id for loan in second.loans] == [ids[0]] and beyond.page == 2
    ann_browser = world.browser("ann")
    for page in ("1", "0", "-4", "abc", "99999999999"):
        assert ann_browser.get(f"/loans?page={page}").status_code == 200



# -- which customer each row is about ---------------------------------------------------------------------


def _customer_of(rt, document_id: int) -> str:
    with rt.db.session() as session:
        return session.get(Document, document_id).customer.name


def _rows(page: str, marker: str) -> list[str]:
    """The rows (list items or table rows) of the section or table marked `marker`, tags stripped."""
    found = re.search(rf'{marker}.*?</(?:ul|table)>', page, re.S)
    assert found, f"no {marker} on the page"
    rows = re.findall(r"<(?:li|tr)\b.*?</(?:li|tr)>", found.group(0), re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def test_every_loan_row_names_its_customer_when_files_share_a_title(world, rt):
    # Was: the start page's requests, releases and active loans and the custody desk's active loans named
    # only the file ("Customer dossier" twice over): nobody could tell whose file each row was.
    first, second = world.document(3, title="Customer dossier"), world.document(3, title="Customer dossier")
    names = [_customer_of(rt, first), _customer_of(rt, second)]
    assert names[0] != names[1]
    requested = _requests(world, rt, first, second)
    home = world.browser("paula").get("/").get_data(as_text=True)
    decisions = _rows(home, 'id="todo-decisions"')
    assert len(decisions) == 2 and all(any(name in row for row in decisions) for name in names)
    for loan_id in requested:
        world.browser("paula").decide(loan_id, "approve")
    releases = _rows(world.browser("cora").get("/").get_data(as_text=True), 'id="todo-releases"')
    assert len(releases) == 2 and all(any(name in row for row in releases) for name in names)
    for loan_id in requested:
        assert world.browser("cora").decide(loan_id, "release").status_code == 302
    active = _rows(world.browser("cora").get("/loans/custody").get_data(as_text=True), 'class="active-loans"')
    assert active[0].startswith("Document Customer Borrower")
    assert all(any(name in row for row in active[1:]) for name in names)
    held = _rows(world.browser("ann").get("/").get_data(as_text=True), 'id="todo-loans"')
    assert held[0].startswith("Document Customer Grade")
    assert all(any(name in row for row in held[1:]) for name in names)


def _desk_link(page: str) -> str | None:
    found = re.search(r'<p class="muted back-to-desk"><a href="([^"]+)">', page)
    return found.group(1) if found else None


def test_the_loan_page_leads_back_to_the_desk_it_was_decided_from(world, rt):
    # Was: after releasing a loan from its page the custodian stayed there with a message and no way back to
    # the custody desk but the menu; the loan page linked to no desk for anyone.
    (loan_id,) = _requests(world, rt, world.document(3))
    assert _desk_link(world.browser("paula").get(f"/loans/{loan_id}").get_data(as_text=True)) == "/loans/approvals"
    assert _desk_link(world.browser("ann").get(f"/loans/{loan_id}").get_data(as_text=True)) == "/loans"
    world.browser("paula").decide(loan_id, "approve")
    cora = world.browser("cora")
    released = cora.decide(loan_id, "release")
    assert released.status_code == 302 and released.headers["Location"].endswith(f"/loans/{loan_id}")
    after = cora.get(f"/loans/{loan_id}").get_data(as_text=True)
    assert "The loan is released; its days start now." in after
    assert _desk_link(after) == "/loans/custody"


@pytest.mark.parametrize(("verb", "data", "status"), [
    ("reject", {"comment": "  "}, 403),  # the policy's slip, recorded as a refusal
    ("release", {"confirm": None}, 400),  # the form's own check: nothing asked of the policy
])
def test_a_loan_page_shown_again_records_its_read_as_shown_again(world, rt, verb, data, status):
    """Before, the loan page shown again after a refused form kept its read record, but the record said
    nothing of it: an auditor could not tell a re-showing from a first look at someone else's loan."""
    (loan_id,) = _requests(world, rt, world.document(3))
    if verb == "release":
        world.browser("paula").decide(loan_id, "approve")
    actor = world.browser("paula" if verb == "reject" else "cora")
    audit = world.audit.mark()
    first = actor.get(f"/loans/{loan_id}")
    assert first.status_code == 200
    [look] = audit.since("loan:read")
    assert json.loads(look.detail)["read"] == "context" and "again" not in json.loads(look.detail)
    audit.mark()
    response = actor.decide(loan_id, verb, **data)
    assert response.status_code == status
    [read] = audit.since("loan:read")
    assert (read.outcome, read.actor_name, read.loan_id) == ("allowed", actor.username, loan_id)
    assert json.loads(read.detail)["read"] == "context" and json.loads(read.detail)["again"] is True


@pytest.mark.parametrize(("language", "badge"), [
    ("en", "Grade 2 — important"), ("zh-CN", "2 级 — 重要"), ("ru", "Гриф 2 — важный"),
])
def test_the_grade_badges_name_the_grade(world, rt, language, badge):
    """The badges on the document and loan pages said only "Grade 2", while the form that chose the grade, the
    viewer's banner and the stamp name it: a reader of the page had to know what grade 2 means here."""
    doc = world.document(2)
    (loan_id,) = _requests(world, rt, doc)
    ann = world.browser("ann")
    for url in (f"/documents/{doc}", f"/loans/{loan_id}"):
        page = ann.get(url, headers={"Accept-Language": language}).get_data(as_text=True)
        assert re.findall(r'<span class="grade grade-2"[^>]*>([^<]*)</span>', page) == [badge], url


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_two_batches_of_the_same_requests_in_other_orders_wait_instead_of_deadlocking(world, rt, db_backend,
                                                                                     monkeypatch):
    """Paula approved requests a, b while Quinn approved b, a (the API takes ids in any order): each held
    the loan the other wanted next and the database ended one of them (a 503 "database unavailable").
    A batch now decides its loans in the order of their ids, so the second waits for the first and finds
    them decided. Quinn's batch starts the moment Paula's has approved its first loan."""
    first, second = _requests(world, rt, world.document(2), world.document(2))
    outcomes: list[object] = []
    later: list[threading.Thread] = []
    approve = loans_service.approve

    def batch(approver: str, ids: list[int]) -> None:
        try:
            with rt.db.session() as session:
                actor = session.scalars(select(User).where(User.username == approver)).one()
                outcome = loans_service.approve_many(rt, session, actor, ids, comment="Visits agreed",
                                                     ctx=AccessContext())
                outcomes.append((approver, [loan.id for loan in outcome.approved],
                                 [(loan_id, decision.code) for loan_id, decision in outcome.refused]))
        except Exception as exc:
            outcomes.append(exc)

    def then_the_other_batch(*args, **kwargs):
        approved = approve(*args, **kwargs)
        if not later:
            later.append(threading.Thread(target=batch, args=("quinn", [second, first])))
            later[0].start()
            until_done_or_waiting(rt, later[0])
        return approved

    monkeypatch.setattr(loans_service, "approve", then_the_other_batch)
    batch("paula", [first, second])
    later[0].join(timeout=30)
    assert not later[0].is_alive()
    assert outcomes == [("paula", [first, second], []),
                        ("quinn", [], [(second, "invalid_state"), (first, "invalid_state")])]  # as given


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_an_approval_waiting_for_a_rejection_sees_the_request_rejected(world, rt, db_backend):
    """Paula rejected a request while Quinn approved it. Quinn's approval waited for Paula's lock on the
    loan, then went on with the loan as it had read it before waiting (still requested): the rejected
    request became an active loan on one approval. The lock now reads the loan again: Quinn is refused."""
    (loan_id,) = _requests(world, rt, world.document(2))
    outcome: list[object] = []

    def quinn() -> None:
        with rt.db.session() as session:
            actor = session.scalars(select(User).where(User.username == "quinn")).one()
            loan = session.get(Loan, loan_id)
            assert loan.status == LoanStatus.REQUESTED  # read before the wait, as a page or the API reads it
            try:
                loans_service.approve(rt, session, actor, loan, comment="Fine", ctx=AccessContext())
                outcome.append("approved")
            except Exception as exc:
                outcome.append(getattr(getattr(exc, "decision", None), "code", exc))

    def reject(session) -> None:
        paula = session.scalars(select(User).where(User.username == "paula")).one()
        loans_service.reject(rt, session, paula, session.get(Loan, loan_id), comment="Not for this visit",
                             ctx=AccessContext())

    meanwhile(rt, reject, quinn)
    assert outcome == ["invalid_state"]
    assert one_loan(rt, id=loan_id).status == LoanStatus.REJECTED


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_a_revocation_by_the_system_waiting_for_a_return_sees_the_loan_returned(world, rt, db_backend):
    """The same wait in the system's revocations (the last day, a suspension, a rotation): a loan returned
    while the revocation waited for its lock was revoked over the return, recorded as revoked and its
    reservations given back a second time. The lock now reads the loan again: nothing is revoked."""
    (loan_id,) = _requests(world, rt, world.document(2))
    with rt.db.session() as session:
        loans_service.approve(rt, session, session.scalars(select(User).where(User.username == "paula")).one(),
                              session.get(Loan, loan_id), comment="Fine", ctx=AccessContext())
    outcome: list[bool] = []

    def revoke() -> None:
        with rt.db.session() as session:
            loan = session.get(Loan, loan_id)
            assert loan.status == LoanStatus.ACTIVE  # read before the wait
            outcome.append(departures.revoke_by_system(rt, session, loan, reason="Suspended", ctx=AccessContext()))

    audit = world.audit.mark()
    def give_back(session) -> None:
        ann = session.scalars(select(User).where(User.username == "ann")).one()
        loans_service.return_loan(rt, session, ann, session.get(Loan, loan_id), ctx=AccessContext())

    meanwhile(rt, give_back, revoke)
    assert outcome == [False]
    assert one_loan(rt, id=loan_id).status == LoanStatus.RETURNED
    assert audit.since("loan:revoke") == []


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("settings_overrides", [{"audit_shards": 1}])
def test_a_batch_meeting_a_single_approval_waits_instead_of_deadlocking(world, rt, db_backend, settings_overrides):
    """Quinn was approving request b alone (b locked, his record not yet written) when Paula approved a and
    b in a batch. The batch approved a, writing its record (which holds the head of its chain until the
    commit), then waited for b; Quinn's record then waited for that head, and the database ended one of
    them (a 503). A batch now locks every loan it decides before it writes any record: it waits for
    Quinn, then finds b decided."""
    first, second = _requests(world, rt, world.document(2), world.document(2))
    outcomes: list[object] = []

    def batch() -> None:
        try:
            with rt.db.session() as session:
                paula = session.scalars(select(User).where(User.username == "paula")).one()
                outcome = loans_service.approve_many(rt, session, paula, [first, second], comment="Visits agreed",
                                                     ctx=AccessContext())
                outcomes.append(([loan.id for loan in outcome.approved],
                                 [(loan_id, decision.code) for loan_id, decision in outcome.refused]))
        except Exception as exc:
            outcomes.append(exc)

    with rt.db.session() as session:
        quinn = session.scalars(select(User).where(User.username == "quinn")).one()
        loan = loans_service.get_loan(session, quinn, second)
        loans_service.lock_loan(session, loan)
        other = threading.Thread(target=batch)
        other.start()
        until_done_or_waiting(rt, other)
        loans_service.approve(rt, session, quinn, loan, comment="Visit agreed", ctx=AccessContext())
    other.join(timeout=30)
    assert outcomes == [([first], [(second, "invalid_state")])]
