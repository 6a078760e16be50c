"""Loans through the API: request, decide, release, return, revoke; who may see which loan."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.api.conftest import assert_error, events
from tests.support.locks import meanwhile
from vault.core.context import AccessContext
from vault.models import Document, Loan, Role
from vault.services import accounts, loans, quota


@pytest.fixture
def document_id(api):
    return api.upload(api.customer(), grade=2)


def test_request_list_and_read_a_loan(api, rt, document_id, cast):
    response = api.post("/api/v1/loans", "bob", json={
        "document_id": document_id, "reason": "Visit on Monday", "category": "visit_preparation",
        "place": "Customer site", "days": 5})
    assert response.status_code == 201
    created = response.get_json()
    assert created["status"] == "requested"
    loan_id = created["id"]
    requested = events(rt, "loan:request")
    assert [(e.actor_name, e.loan_id, e.document_id) for e in requested] == [("bob", loan_id, document_id)]

    mine = api.get("/api/v1/loans?mine=1", "bob").get_json()["loans"]
    assert [(loan["id"], loan["status"], loan["borrower"]["username"]) for loan in mine] == [
        (loan_id, "requested", "bob")]
    assert api.get("/api/v1/loans?mine=1", "bea").get_json()["loans"] == []
    queue = api.get("/api/v1/loans?status=requested", "ann").get_json()["loans"]
    assert [loan["id"] for loan in queue] == [loan_id]
    loan = api.get(f"/api/v1/loans/{loan_id}", "bob").get_json()
    assert (loan["document_id"], loan["reason"], loan["category"], loan["place"], loan["days"]) == (
        document_id, "Visit on Monday", "visit_preparation", "Customer site", 5)
    assert loan["approvals_required"] == 1


def test_another_persons_loan_is_404(api, document_id):
    loan_id = api.loan(document_id, "bob")
    assert_error(api.get(f"/api/v1/loans/{loan_id}", "bea"), 404, "not_found")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/return", "bea"), 404, "not_found")
    assert_error(api.get("/api/v1/loans/99999", "bob"), 404, "not_found")
    assert_error(api.get("/api/v1/loans/x1", "bob"), 404, "not_found")


def test_approve_then_return(api, rt, document_id):
    loan_id = api.loan(document_id)
    response = api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={"comment": "Fine"})
    assert response.status_code == 200
    loan = response.get_json()
    assert loan["status"] == "active"
    assert [(d["approver"]["username"], d["decision"], d["comment"]) for d in loan["decisions"]] == [
        ("ann", "approve", "Fine")]
    assert loan["due_at"] is not None
    assert [(e.actor_name, e.loan_id) for e in events(rt, "loan:approve")] == [("ann", loan_id)]
    # Deciding twice is refused; the approval without a body is fine on another request.
    assert_error(api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={}), 403, "already_decided")
    returned = api.post(f"/api/v1/loans/{loan_id}/return", "bob")
    assert returned.status_code == 200
    assert returned.get_json()["status"] == "returned"
    assert_error(api.post(f"/api/v1/loans/{loan_id}/return", "bob"), 403, "invalid_state")


def test_reject_needs_a_comment(api, rt, document_id):
    loan_id = api.loan(document_id)
    assert_error(api.post(f"/api/v1/loans/{loan_id}/reject", "ann"), 403, "comment_required")
    response = api.post(f"/api/v1/loans/{loan_id}/reject", "ann", json={"comment": "Not for this visit"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "rejected"
    assert len(events(rt, "loan:reject")) == 1


def test_revoke_needs_a_reason_and_the_right_role(api, rt, document_id):
    loan_id = api.approved_loan(document_id)
    assert_error(api.post(f"/api/v1/loans/{loan_id}/revoke", "bob", json={"reason": "no longer needed"}),
                 403, "not_permitted")
    body = assert_error(api.post(f"/api/v1/loans/{loan_id}/revoke", "kim", json={}), 422, "invalid_request")
    assert body["fields"] == {"reason": "is required"}
    response = api.post(f"/api/v1/loans/{loan_id}/revoke", "kim", json={"reason": "The customer asked us to stop"})
    assert response.status_code == 200
    loan = response.get_json()
    assert (loan["status"], loan["closed_by"]["username"]) == ("revoked", "kim")
    assert [e.actor_name for e in events(rt, "loan:revoke")] == ["kim"]


def test_grade_3_needs_a_custodians_release(api, rt):
    document_id = api.upload(api.customer(), grade=3)
    loan_id = api.approved_loan(document_id)
    assert api.get(f"/api/v1/loans/{loan_id}", "bob").get_json()["status"] == "approved"
    assert_error(api.post(f"/api/v1/loans/{loan_id}/release", "ann"), 403, "not_permitted")
    response = api.post(f"/api/v1/loans/{loan_id}/release", "kim", json={})
    assert response.status_code == 200
    loan = response.get_json()
    assert (loan["status"], loan["released_by"]["username"]) == ("active", "kim")
    assert [e.actor_name for e in events(rt, "loan:release")] == ["kim"]
    assert_error(api.post(f"/api/v1/loans/{loan_id}/release", "kim"), 403, "invalid_state")


def test_separation_of_duties(api, users, rt):
    # People holding two duties, each refused the second one on the same loan.
    users.make("dora", Role.BORROWER, Role.APPROVER)
    users.make("cleo", Role.COMPILER, Role.APPROVER)
    users.make("cody", Role.APPROVER, Role.CUSTODIAN)
    users.make("bert", Role.BORROWER, Role.CUSTODIAN)
    customer_id = api.customer()
    mine = api.upload(customer_id, grade=3, user="cleo")
    own_request = api.loan(mine, "dora")
    assert_error(api.post(f"/api/v1/loans/{own_request}/approve", "dora", json={}), 403, "separation_of_duties")
    assert_error(api.post(f"/api/v1/loans/{own_request}/approve", "cleo", json={}), 403, "separation_of_duties")
    assert api.post(f"/api/v1/loans/{own_request}/approve", "cody", json={}).status_code == 200
    assert_error(api.post(f"/api/v1/loans/{own_request}/release", "cody"), 403, "separation_of_duties")
    bert_loan = api.approved_loan(api.upload(customer_id, grade=2, title="Other"), "bert")
    assert_error(api.post(f"/api/v1/loans/{bert_loan}/revoke", "bert", json={"reason": "trying my own loan"}),
                 403, "separation_of_duties")
    refused = events(rt, "loan:approve", "denied") + events(rt, "loan:release", "denied") + events(
        rt, "loan:revoke", "denied")
    assert sorted((e.actor_name, e.reason_code) for e in refused) == [
        ("bert", "separation_of_duties"), ("cleo", "separation_of_duties"), ("cody", "separation_of_duties"),
        ("dora", "separation_of_duties")]


def test_wrong_roles_are_refused(api, document_id):
    loan_id = api.loan(document_id)
    assert_error(api.post("/api/v1/loans", "carl", json={
        "document_id": document_id, "reason": "Visit on Monday", "category": "other", "place": "x", "days": 1}),
        403, "not_permitted")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/approve", "kim", json={}), 403, "not_permitted")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/reject", "bob", json={"comment": "no"}), 403, "not_permitted")
    assert_error(api.get("/api/v1/loans", "carl"), 403, "not_permitted")


def test_loan_request_input_errors(api, rt, document_id):
    body = assert_error(api.post("/api/v1/loans", "bob", json={"document_id": "1", "category": "fun", "days": 0}),
                        422, "invalid_request")
    # The body's shape only: an unlisted category and days below one are the policy's (tests/api/test_input_codes).
    assert body["fields"] == {"document_id": "must be a whole number", "reason": "is required", "place": "is required"}
    good = {"document_id": document_id, "reason": "Visit on Monday", "category": "other", "place": "x", "days": 1}
    assert_error(api.post("/api/v1/loans", "bob", json={**good, "days": True}), 422, "invalid_request")
    assert_error(api.post("/api/v1/loans", "bob", json={**good, "document_id": 2**40}), 422, "invalid_request")
    assert_error(api.post("/api/v1/loans", "bob", json={**good, "document_id": 99999}), 404, "not_found")
    # The policy's own rules on the content of a request, with its reason codes.
    assert_error(api.post("/api/v1/loans", "bob", json={**good, "reason": "because"}), 403, "reason_too_short")
    assert_error(api.post("/api/v1/loans", "bob", json={**good, "days": 31}), 403, "days_too_long")
    assert_error(api.get("/api/v1/loans?status=lost", "bob"), 422, "invalid_request")
    assert_error(api.get("/api/v1/loans?mine=maybe", "bob"), 422, "invalid_request")
    assert events(rt, "loan:request", "allowed") == []


@pytest.mark.parametrize(("slips", "code"), [
    ({"reason": "because", "days": 31}, "reason_too_short"),
    ({"reason": "?!.......,,", "days": 31}, "reason_not_meaningful"),
    ({"reason": "Contract renewal", "days": 31}, "reason_copies_category"),
    ({"days": 31}, "days_too_long"),
    ({"category": "fun", "place": " ", "days": 0}, "invalid_category"),
    ({"place": "", "days": 0}, "place_required"),
])
def test_a_request_with_several_slips_answers_the_first_code(api, rt, document_id, slips, code):
    """The input rules the page lists all at once answer a program with one code, the first in field
    order (reason, category, place, days), as they always did; one refusal record, no loan."""
    good = {"document_id": document_id, "reason": "Visit on Monday", "category": "other", "place": "x", "days": 1}
    assert_error(api.post("/api/v1/loans", "bob", json={**good, **slips}), 403, code)
    assert [(e.reason_code, e.actor_name, e.document_id) for e in events(rt, "loan:request", "denied")] == [
        (code, "bob", document_id)]
    assert events(rt, "loan:request", "allowed") == []


def test_decision_bodies_are_checked(api, document_id):
    loan_id = api.loan(document_id)
    assert_error(api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={"comment": 5}), 422, "invalid_request")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/approve", "ann", data="comment=x",
                          content_type="text/plain"), 415, "json_required")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/release", "kim", json={"now": True}), 422, "invalid_request")
    assert api.get(f"/api/v1/loans/{loan_id}", "bob").get_json()["status"] == "requested"


def _spent(rt, document_id: int, user: str = "bob") -> None:
    """`user` has no view of the document left (a quota of 0 for them), so an extension is in order."""
    with rt.db.session() as session:
        quota.set_person_quota(session, accounts.get_user(session, user).id, document_id, 0)


def test_an_extension_needs_no_days(api, rt, document_id):
    """An extension adds views, not time: the page's form does not ask for days, nor does the API."""
    _spent(rt, document_id)
    response = api.post("/api/v1/loans", "bob", json={
        "document_id": document_id, "kind": "extension", "extra_views": 2, "reason": "Visit on Monday",
        "category": "other", "place": "Office"})
    assert response.status_code == 201, response.get_json()
    loan = api.get(f"/api/v1/loans/{response.get_json()['id']}", "bob").get_json()
    assert (loan["kind"], loan["days"], loan["extra_views"]) == ("extension", 0, 2)
    assert [(e.actor_name, e.document_id) for e in events(rt, "loan:request", "allowed")] == [("bob", document_id)]


def test_days_sent_with_an_extension_are_refused_not_ignored(api, rt, document_id):
    """A client that sends days believes it asks for time; an extension gives none, so the API says so
    (422, naming the field, with every other slip of shape in the same answer) rather than drop them."""
    _spent(rt, document_id)
    extension = {"document_id": document_id, "kind": "extension", "extra_views": 2, "reason": "Visit on Monday",
                 "category": "other", "place": "Office"}
    body = assert_error(api.post("/api/v1/loans", "bob", json={**extension, "days": 5}), 422, "invalid_request")
    assert body["fields"] == {"days": "is not for an extension, which adds views, not days"}
    body = assert_error(api.post("/api/v1/loans", "bob", json={**extension, "days": 5, "place": 7}), 422,
                        "invalid_request")
    assert body["fields"] == {"days": "is not for an extension, which adds views, not days",
                              "place": "must be a string"}
    assert events(rt, "loan:request") == []
    assert api.get("/api/v1/loans?mine=1", "bob").get_json()["loans"] == []


@pytest.mark.parametrize("kind", [{}, {"kind": "loan"}])
def test_extra_views_sent_with_a_loan_are_refused_not_ignored(api, rt, document_id, kind):
    """Extra views are an extension's: a loan gives days and the grade's views. Before, a loan request with
    `extra_views` was granted as a plain loan, the client left believing it had asked for more views."""
    loan = {"document_id": document_id, "reason": "Visit on Monday", "category": "other", "place": "Office",
            "days": 5, **kind}
    for extra in (3, 0):
        body = assert_error(api.post("/api/v1/loans", "bob", json={**loan, "extra_views": extra}), 422,
                            "invalid_request")
        assert body["fields"] == {"extra_views": "is not for a loan, which gives days, not extra views"}
    # Every slip of shape in the same answer; a slip in the kind itself is answered alone, as for days.
    body = assert_error(api.post("/api/v1/loans", "bob", json={**loan, "extra_views": 3, "place": 7}), 422,
                        "invalid_request")
    assert body["fields"] == {"extra_views": "is not for a loan, which gives days, not extra views",
                              "place": "must be a string"}
    body = assert_error(api.post("/api/v1/loans", "bob", json={**loan, "extra_views": 3, "kind": "gift"}), 422,
                        "invalid_request")
    assert body["fields"] == {"kind": "must be one of: loan, extension"}
    assert events(rt, "loan:request") == []
    assert api.get("/api/v1/loans?mine=1", "bob").get_json()["loans"] == []
    # Without it, the same request is a loan.
    assert api.post("/api/v1/loans", "bob", json=loan).status_code == 201


def test_an_extension_needs_its_extra_views(api, rt, document_id):
    """An extension says how many views it asks for, as its page's form requires: left out, it is 422 naming
    the field (it was taken as 0 and refused by the policy, recorded as a request for no views)."""
    _spent(rt, document_id)
    body = assert_error(api.post("/api/v1/loans", "bob", json={
        "document_id": document_id, "kind": "extension", "reason": "Visit on Monday", "category": "other",
        "place": "Office"}), 422, "invalid_request")
    assert body["fields"] == {"extra_views": "is required for an extension"}
    assert events(rt, "loan:request") == []


@pytest.mark.parametrize("kind", [{}, {"kind": "loan"}])
def test_a_loan_still_needs_its_days(api, rt, document_id, kind):
    body = assert_error(api.post("/api/v1/loans", "bob", json={
        "document_id": document_id, "reason": "Visit on Monday", "category": "other", "place": "Office", **kind}),
        422, "invalid_request")
    assert body["fields"] == {"days": "is required for a loan"}
    assert events(rt, "loan:request") == []


@pytest.mark.parametrize("db_backend", ["postgresql"])
@pytest.mark.parametrize("kind", ["loan", "extension"])
def test_one_request_sent_twice_at_once_is_one_request(api, rt, document_id, db_backend, kind):
    """Bob's request sent twice at the same moment (a double click, a client that retries): each looked
    for an open request of his for the file before the other committed, and both were made. Two extension
    requests, both approved, would give him his extra views twice. The borrower is now read locked for a
    request: the second finds the first (`loan_already_open`, `extension_already_open`)."""
    if kind == "extension":
        _spent(rt, document_id)
    body = {"document_id": document_id, "kind": kind, "reason": "Visit on Monday", "category": "other",
            "place": "Office", **({"extra_views": 2} if kind == "extension" else {"days": 3})}
    answers: list[Any] = []

    def first(session: Any) -> None:
        bob = accounts.get_user(session, "bob")
        loans.request_loan(rt, session, bob, session.get(Document, document_id), kind=kind, reason=body["reason"],
                           category="other", place="Office", days=body.get("days", 0),
                           extra_views=body.get("extra_views", 0), ctx=AccessContext())

    meanwhile(rt, first, lambda: answers.append(api.post("/api/v1/loans", "bob", json=body)))
    assert_error(answers[0], 403, f"{kind}_already_open")
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Loan).where(Loan.document_id == document_id)) == 1
