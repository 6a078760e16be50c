"""Withdrawing a request and reading the loan list page by page, through the API."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error, events
from vault.services import loans as loans_service


@pytest.fixture
def document_id(api):
    return api.upload(api.customer(), grade=2)


def test_the_borrower_withdraws_a_pending_request(api, rt, document_id):
    loan_id = api.loan(document_id, "bob")
    response = api.post(f"/api/v1/loans/{loan_id}/withdraw", "bob")
    assert response.status_code == 200
    assert response.get_json()["status"] == "withdrawn"
    assert [(e.actor_name, e.loan_id) for e in events(rt, "loan:withdraw")] == [("bob", loan_id)]
    assert api.get("/api/v1/loans?status=requested", "ann").get_json()["loans"] == []


def test_nobody_else_withdraws_and_a_decided_request_stays(api, rt, document_id):
    loan_id = api.loan(document_id, "bob")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/withdraw", "bea"), 404, "not_found")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/withdraw", "ann"), 403, "not_permitted")
    denied = events(rt, "loan:withdraw", "denied")
    assert [(e.actor_name, e.reason_code) for e in denied] == [("bea", "not_found"), ("ann", "not_permitted")]
    assert events(rt, "loan:withdraw") == []
    assert api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={}).status_code == 200
    assert_error(api.post(f"/api/v1/loans/{loan_id}/withdraw", "bob"), 403, "invalid_state")
    assert api.get(f"/api/v1/loans/{loan_id}", "bob").get_json()["status"] == "active"


def test_the_loan_list_is_paginated(api, rt, document_id, monkeypatch):
    first = api.loan(document_id, "bob")
    other = api.upload(api.customer("Globex"), grade=2)
    second = api.loan(other, "bob")
    monkeypatch.setattr(loans_service, "PAGE_SIZE", 1)
    page_one = api.get("/api/v1/loans?mine=1", "bob").get_json()
    assert ([loan["id"] for loan in page_one["loans"]], page_one["total"], page_one["page"], page_one["pages"]) == (
        [second], 2, 1, 2)
    page_two = api.get("/api/v1/loans?mine=1&page=2", "bob").get_json()
    assert [loan["id"] for loan in page_two["loans"]] == [first]
    assert api.get("/api/v1/loans?mine=1&page=9", "bob").get_json()["page"] == 2  # past the end: the last
    assert_error(api.get("/api/v1/loans?page=0", "bob"), 422, "invalid_request")
