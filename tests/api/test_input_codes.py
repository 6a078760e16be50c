"""What a person typed is judged by the policy, through the API as on the pages: the same input gets the same
reason code and the same refusal record either way, and a refused opening spends no view.

Before, the API's body checks refused an empty place or reason, an unlisted category and days out of range
with a 422 of their own before the policy ran, so `place_required`, `invalid_category`, `days_invalid`... could
only come from the pages. A body of the wrong shape (a wrong JSON type, control characters, an over-long
string, a missing field) is still the API's own 422, naming the field, and records nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from tests.conftest import csrf_from, login
from tests.loans.helpers import view_rows

REASON = "Preparing the visit"
VIEW = {"reason": REASON, "place": "Office"}
LOAN = {"reason": "Visit on Monday", "category": "other", "place": "Office", "days": 3}


def _record(rt: Any, action: str) -> list[tuple[Any, ...]]:
    """The refusals of `action`, as a reviewer reads them (who, what, why, where they said they were)."""
    return [(e.actor_name, e.document_id, e.reason_code, e.declared_place, e.reason_text)
            for e in events(rt, action, "denied")]


class Browser:
    """Bob on the pages, sending forms as a browser does."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        self.token = login(self.client, "bob")

    def post(self, path: str, data: dict[str, Any]) -> Any:
        return self.client.post(path, data={"csrf_token": self.token, **data})


@pytest.fixture
def browser(app: Any, api: Any) -> Browser:
    api.token("bob")  # the agreement accepted, as the API needs
    return Browser(app)


VIEW_SLIPS = [
    pytest.param({"place": ""}, "place_required", id="empty place"),
    pytest.param({"place": "   "}, "place_required", id="blank place"),
    pytest.param({"place": "\u200b\u2060"}, "place_required", id="invisible place"),
    pytest.param({"place": "- / ."}, "place_required", id="a place of punctuation only"),
    pytest.param({"reason": ""}, "reason_too_short", id="empty reason"),
    pytest.param({"reason": " \t "}, "reason_too_short", id="blank reason"),
    pytest.param({"reason": "", "place": ""}, "reason_too_short", id="both empty: the first in field order"),
    pytest.param({"category": "fun"}, "invalid_category", id="unlisted category"),
]


@pytest.mark.parametrize(("slip", "code"), VIEW_SLIPS)
def test_an_opening_gets_the_policys_code_through_the_api_as_on_the_page(api, rt, browser, slip, code):
    document_id = api.upload(api.customer(), grade=1)
    page = browser.post(f"/documents/{document_id}/view", {**VIEW, **slip})
    assert page.status_code == 403, page.get_data(as_text=True)[:500]
    on_page = _record(rt, "document:view")
    assert [r[2] for r in on_page] == [code]
    assert_error(api.open_view(document_id, json=slip), 403, code)
    # Recorded alike: one refusal each, with the same code and the same declared place (none when empty).
    assert _record(rt, "document:view") == on_page * 2
    assert view_rows(rt) == []
    assert api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"] == 10


@pytest.mark.parametrize(("slip", "code"), VIEW_SLIPS)
def test_the_one_request_view_gets_the_policys_code_as_a_download_on_the_page(api, rt, browser, slip, code):
    document_id = api.upload(api.customer(), grade=1)
    page = browser.post(f"/documents/{document_id}/view", {**VIEW, **slip, "download": "y"})
    assert page.status_code == 403, page.get_data(as_text=True)[:500]
    on_page = _record(rt, "document:download")
    assert [r[2] for r in on_page] == [code]
    answer = api.post(f"/api/v1/documents/{document_id}/content", "bob", json={**VIEW, **slip})
    assert_error(answer, 403, code)
    assert _record(rt, "document:download") == on_page * 2
    assert view_rows(rt) == []


@pytest.mark.parametrize(("slip", "code"), [
    pytest.param({"place": ""}, "place_required", id="empty place"),
    pytest.param({"place": "  "}, "place_required", id="blank place"),
    pytest.param({"place": "\u200b"}, "place_required", id="invisible place"),
    pytest.param({"reason": ""}, "reason_too_short", id="empty reason"),
    pytest.param({"category": ""}, "invalid_category", id="empty category"),
    pytest.param({"category": "fun"}, "invalid_category", id="unlisted category"),
    pytest.param({"days": 0}, "days_invalid", id="no days"),
    pytest.param({"days": -4}, "days_invalid", id="negative days"),
    pytest.param({"days": 5000}, "days_too_long", id="days beyond any grade"),
    pytest.param({"category": "", "place": "", "days": 0}, "invalid_category", id="the first in field order"),
])
def test_a_loan_request_gets_the_policys_code_through_the_api_as_on_the_page(api, rt, browser, slip, code):
    document_id = api.upload(api.customer(), grade=2)
    page = browser.post(f"/documents/{document_id}/loans/new", {**LOAN, **slip})
    assert page.status_code == 403, page.get_data(as_text=True)[:500]
    on_page = _record(rt, "loan:request")
    assert [r[2] for r in on_page] == [code]
    assert_error(api.post("/api/v1/loans", "bob", json={"document_id": document_id, **LOAN, **slip}), 403, code)
    assert _record(rt, "loan:request") == on_page * 2
    assert events(rt, "loan:request") == []


def test_an_extension_out_of_range_is_the_policys_refusal(api, rt, browser):
    """Extra views below one were the API's 422; the policy says first that views are left, as the page does."""
    document_id = api.upload(api.customer(), grade=2)
    api.approved_loan(document_id)
    extension = {**{k: v for k, v in LOAN.items() if k != "days"}, "kind": "extension", "extra_views": -1}
    assert_error(api.post("/api/v1/loans", "bob", json={"document_id": document_id, **extension}), 403,
                 "quota_not_exhausted")
    form = browser.client.get(f"/documents/{document_id}/extension")
    assert form.status_code == 200
    page = browser.client.post(f"/documents/{document_id}/extension", data={
        "csrf_token": csrf_from(form.get_data(as_text=True)), "reason": LOAN["reason"], "category": "other",
        "place": "Office", "extra_views": "-1"})
    assert page.status_code == 403, page.get_data(as_text=True)[:500]
    assert [r[2] for r in _record(rt, "loan:request")] == ["quota_not_exhausted"] * 2


@pytest.mark.parametrize(("path", "body", "field", "problem"), [
    ("views", {"place": 5}, "place", "must be a string"),
    ("views", {"place": "Off\x00ice"}, "place", "must not contain control characters"),
    ("views", {"place": "x" * 201}, "place", "must be at most 200 characters"),
    ("views", {"reason": None}, "reason", "must not be null"),
    ("views", {"category": 3}, "category", "must be a string"),
    ("content", {"place": ["Office"]}, "place", "must be a string"),
    ("content", {"reason": "x" * 2001}, "reason", "must be at most 2000 characters"),
    ("loans", {"days": "3"}, "days", "must be a whole number"),
    ("loans", {"days": 2.5}, "days", "must be a whole number"),
    ("loans", {"category": "other\x07"}, "category", "must not contain control characters"),
    ("loans", {"kind": "gift"}, "kind", "must be one of: loan, extension"),
])
def test_a_body_of_the_wrong_shape_is_still_422_naming_the_field(api, rt, path, body, field, problem):
    document_id = api.upload(api.customer(), grade=2 if path == "loans" else 1)
    if path == "loans":
        response = api.post("/api/v1/loans", "bob", json={"document_id": document_id, **LOAN, **body})
    else:
        response = api.post(f"/api/v1/documents/{document_id}/{path}", "bob", json={**VIEW, **body})
    assert assert_error(response, 422, "invalid_request")["fields"] == {field: problem}
    assert _record(rt, "loan:request") == _record(rt, "document:view") == _record(rt, "document:download") == []
    assert view_rows(rt) == []


@pytest.mark.parametrize("path", ["views", "content"])
def test_a_missing_place_is_still_a_missing_field(api, rt, path):
    """A field left out is the body's shape (422), not a place left empty (the policy's `place_required`)."""
    document_id = api.upload(api.customer(), grade=1)
    response = api.post(f"/api/v1/documents/{document_id}/{path}", "bob", json={"reason": REASON})
    assert assert_error(response, 422, "invalid_request")["fields"] == {"place": "is required"}
    assert view_rows(rt) == []
