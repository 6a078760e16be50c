"""Refusal pages speak plainly and offer the next step the person may take, with the reason code in small
print; a step the person's roles do not allow is never offered."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import csrf_from, login

TEXT = b"Visit notes, prices and contacts.\n"


@pytest.fixture
def document(api: Any) -> int:
    customer = api.customer("Ibérica Logística")
    return api.upload(customer, grade=2, title="Account plan", content=TEXT, filename="plan.txt")


def _browser(app: Any, username: str) -> tuple[Any, str]:
    client = app.test_client()
    return client, login(client, username)


def _steps(html: str) -> list[str]:
    block = re.search(r'<ul class="next-steps">(.*?)</ul>', html, re.S)
    return re.findall(r'href="([^"]+)"', block.group(1)) if block else []


def test_a_hidden_or_missing_item_offers_search_and_look_up(app, api, document):
    client, _token = _browser(app, "bob")
    page = client.get("/customers/999999")
    html = page.get_data(as_text=True)
    assert page.status_code == 404
    assert "Not found, or not yours to see" in html and "look it up by name" in html
    assert _steps(html) == ["/search/", "/customers/lookup"]
    assert '<small class="code">Reason code: not_found</small>' in html


def test_a_role_refusal_says_who_to_ask_and_offers_nothing_out_of_reach(app, api, document):
    client, _token = _browser(app, "aud")
    page = client.get("/customers/")
    html = page.get_data(as_text=True)
    assert page.status_code == 403
    assert "Your roles do not cover this" in html and "ask an administrator for the role" in html
    assert _steps(html) == []  # an auditor may neither search customers nor request loans
    assert "Reason code: not_permitted" in html


def test_a_file_that_needs_a_loan_offers_to_request_one(app, api, document):
    client, _token = _browser(app, "bob")
    reading = client.get(f"/documents/{document}")
    assert reading.status_code == 200
    refused = client.post(f"/documents/{document}/view", data={
        "csrf_token": csrf_from(reading.get_data(as_text=True)), "reason": "Preparing the visit",
        "place": "Office"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403, html[:400]
    assert f'href="/documents/{document}/loans/new">Request a loan of this file' in html
    assert '<small class="code">Reason code: no_active_loan</small>' in html
    # The step leads somewhere that works: the loan request form.
    assert client.get(f"/documents/{document}/loans/new").status_code == 200


def test_an_auditor_refused_a_file_is_not_offered_a_loan(app, api, document):
    client, _token = _browser(app, "aud")
    page = client.get(f"/documents/{document}/loans/new")
    html = page.get_data(as_text=True)
    assert page.status_code in (403, 404)
    assert "Request a loan" not in html and "Reason code:" in html
