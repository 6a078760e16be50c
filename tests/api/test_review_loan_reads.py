"""Reads of a loan are audited, on both databases: a loan names a customer and a file, and its decision
context shows more of the borrower's dealings with that customer. Someone else's loan read on its page,
through `GET /api/v1/loans/{id}` or its `/context` is recorded `loan:read` in the read's own transaction:
if the record cannot be written, nothing is shown. The borrower reading their own request is not."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import events
from tests.audit.test_fail_closed import _refuse_audit_inserts
from tests.conftest import login
from vault.pages.forms.loans import MAX_TEXT

TEXT = b"Visit notes, prices and contacts.\n"


def _request(api: Any) -> dict[str, int]:
    customer = api.customer("Acme Freight", owner="bob", shared=False)
    document = api.upload(customer, title="Account plan", content=TEXT, filename="plan.txt")
    return {"customer": customer, "document": document, "loan": api.loan(document, "bob")}


def test_reading_someone_elses_loan_or_its_context_is_recorded(api, app, rt):
    scene = _request(api)
    loan = scene["loan"]
    for path in (f"/api/v1/loans/{loan}", f"/api/v1/loans/{loan}/context", "/api/v1/loans?mine=1"):
        assert api.get(path, "bob").status_code == 200
    assert events(rt, "loan:read") == []  # the borrower's own request: nothing to record

    assert api.get(f"/api/v1/loans/{loan}", "ann").status_code == 200
    assert api.get(f"/api/v1/loans/{loan}/context", "ann").get_json()["acts"]["approve"]["open"] is True
    browser = app.test_client()
    token = login(browser, "ann")
    page = browser.get(f"/loans/{loan}")
    assert page.status_code == 200 and "Account plan" in page.get_data(as_text=True)
    # A form's error answers with the whole loan page again: that read stands with the 400.
    too_long = browser.post(f"/loans/{loan}/approve", data={"csrf_token": token, "comment": "x" * (MAX_TEXT + 1)})
    assert too_long.status_code == 400 and "Account plan" in too_long.get_data(as_text=True)
    records = events(rt, "loan:read")
    assert [(e.actor_name, json.loads(e.detail)["read"]) for e in records] == [
        ("ann", "loan"), ("ann", "context"), ("ann", "context"), ("ann", "context")]
    assert events(rt, "loan:approve") == []
    borrower = api.get("/api/v1/me", "bob").get_json()["id"]
    assert {(e.loan_id, e.document_id, e.customer_id, e.subject_user_id) for e in records} == {
        (loan, scene["document"], scene["customer"], borrower)}


def test_no_loan_is_shown_when_its_read_cannot_be_recorded(api, app, rt):
    scene = _request(api)
    loan = scene["loan"]
    api.token("ann")
    browser = app.test_client()
    login(browser, "ann")
    _refuse_audit_inserts(rt)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for path in (f"/api/v1/loans/{loan}", f"/api/v1/loans/{loan}/context"):
        answer = api.get(path, "ann", check=False)
        assert answer.status_code == 500 and b"Account plan" not in answer.get_data(), path
    page = browser.get(f"/loans/{loan}")
    assert page.status_code == 500 and "Account plan" not in page.get_data(as_text=True)
    # The borrower's own request needs no record, so it still shows.
    assert api.get(f"/api/v1/loans/{loan}", "bob").status_code == 200
