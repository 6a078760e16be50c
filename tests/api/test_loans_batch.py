"""The approver's batch through the API, on both databases: each loan is approved or refused on its own and
recorded on its own (separation of duties per loan, a loan already decided, one the approver does not
see), and a bad body is a 422 that decides nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from vault.models import Loan, LoanStatus, Role

PATH = "/api/v1/loans/approve"


@pytest.fixture
def queue(api: Any, users: Any) -> dict[str, int]:
    """abe approves, compiles and borrows: his own request and a request for his own file are refused to
    him. bob and bea ask for carl's file; bea withdraws a second request (a closed loan ann never saw)."""
    users.make("abe", Role.APPROVER, Role.COMPILER, Role.BORROWER)
    customer = api.customer()
    carls, abes = api.upload(customer), api.upload(customer, user="abe", title="Abe's notes")
    withdrawn = api.loan(api.upload(customer, title="Old prices"), "bea")
    assert api.post(f"/api/v1/loans/{withdrawn}/withdraw", "bea").status_code == 200
    return {"bob": api.loan(carls, "bob"), "bea": api.loan(carls, "bea"), "abe_own": api.loan(carls, "abe"),
            "abe_file": api.loan(abes, "bob"), "withdrawn": withdrawn}


def _status(rt: Any, loan_id: int) -> LoanStatus:
    with rt.db.session() as session:
        return session.get(Loan, loan_id).status


def test_each_loan_is_approved_or_refused_on_its_own(api, rt, queue):
    q = queue
    # abe: his own request and a request for his own file are refused; bea's goes through.
    response = api.post(PATH, "abe", json={"loan_ids": [q["abe_own"], q["abe_file"], q["bea"]], "comment": "Fine"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["approved"] == [q["bea"]]
    assert [(r["id"], r["code"]) for r in body["refused"]] == [(q["abe_own"], "separation_of_duties"),
                                                               (q["abe_file"], "separation_of_duties")]
    assert all(r["error"] for r in body["refused"])
    # ann: bob's request (given twice: approved once), bea's (decided already: now active), a closed loan she
    # never saw and a made-up id (both "not found", as a probe on their pages), in the order given.
    response = api.post(PATH, "ann", json={"loan_ids": [q["bob"], q["bea"], q["bob"], q["withdrawn"], 999999]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["approved"] == [q["bob"]]
    assert [(r["id"], r["code"]) for r in body["refused"]] == [
        (q["bea"], "invalid_state"), (q["withdrawn"], "not_found"), (999999, "not_found")]
    assert {name: _status(rt, q[name]) for name in ("bob", "bea", "abe_own", "abe_file")} == {
        "bob": LoanStatus.ACTIVE, "bea": LoanStatus.ACTIVE, "abe_own": LoanStatus.REQUESTED,
        "abe_file": LoanStatus.REQUESTED}
    # Every approval and every refusal has its own record, as on the page.
    allowed = events(rt, "loan:approve")
    assert [(e.actor_name, e.loan_id, e.reason_text) for e in allowed] == [("abe", q["bea"], "Fine"),
                                                                          ("ann", q["bob"], None)]
    denied = events(rt, "loan:approve", "denied")
    # Decided (and recorded) in the order of the loans' ids, so that batches never wait for each other in a
    # circle; the answer above keeps the order given.
    assert [(e.actor_name, e.loan_id, e.reason_code) for e in denied] == sorted([
        ("abe", q["abe_own"], "separation_of_duties"), ("abe", q["abe_file"], "separation_of_duties"),
        ("ann", q["bea"], "invalid_state"), ("ann", q["withdrawn"], "not_found"), ("ann", 999999, "not_found")])
    assert all(json.loads(e.detail)["batch"] is True for e in denied)
    # A batch of refusals only is still an answer (its records are kept), not an error.
    refused_only = api.post(PATH, "abe", json={"loan_ids": [q["abe_own"]]})
    assert refused_only.status_code == 200 and refused_only.get_json()["approved"] == []
    assert len(events(rt, "loan:approve", "denied")) == 6


def test_bad_bodies_and_other_roles_decide_nothing(api, rt, queue):
    loan_id = queue["bob"]
    bad: list[tuple[Any, str]] = [
        ({}, "loan_ids"),
        ({"loan_ids": []}, "loan_ids"),
        ({"loan_ids": str(loan_id)}, "loan_ids"),
        ({"loan_ids": [str(loan_id)]}, "loan_ids"),
        ({"loan_ids": [True]}, "loan_ids"),
        ({"loan_ids": [0]}, "loan_ids"),
        ({"loan_ids": [2**31]}, "loan_ids"),
        ({"loan_ids": [loan_id] * 51}, "loan_ids"),
        ({"loan_ids": [loan_id], "comment": 5}, "comment"),
        ({"loan_ids": [loan_id], "comment": "x" * 2001}, "comment"),
        ({"loan_ids": [loan_id], "comment": "nul\x00"}, "comment"),
        ({"loan_ids": [loan_id], "loan": loan_id}, "loan"),
    ]
    for body, field in bad:
        answer = assert_error(api.post(PATH, "ann", json=body), 422, "invalid_request")
        assert field in answer["fields"], (body, answer)
    assert_error(api.post(PATH, "ann", json=[loan_id]), 422, "invalid_request")
    assert_error(api.post(PATH, "ann", data="{", content_type="application/json"), 400, "invalid_json")
    assert_error(api.post(PATH, "ann", data="loan_ids=1"), 415, "json_required")
    # Only approvers approve: a custodian, a borrower and the compiler are refused before anything is read.
    for person in ("kim", "bob", "carl"):
        assert_error(api.post(PATH, person, json={"loan_ids": [loan_id]}), 403, "not_permitted")
    assert _status(rt, loan_id) == LoanStatus.REQUESTED
    assert events(rt, "loan:approve") == []
    assert [e.actor_name for e in events(rt, "loan:approve", "denied")] == ["kim", "bob", "carl"]
