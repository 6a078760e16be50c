"""The approver's and custodian's queues and the context of a decision through the API, on both databases:
each queue lists exactly what its page lists for the caller, in the page's order and under the page's
permission; a loan's context says what its page says (allowance, history, place warning) and which acts
are open to the caller, or the policy's code why not. Refusals are checked as closely as successes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.conftest import assert_error, events
from tests.conftest import login
from vault.models import Role

LIST = "/api/v1/loans"


@pytest.fixture
def scene(api: Any, users: Any) -> dict[str, int]:
    """abe approves and borrows (his own request is never in his queue); kim keeps the grade-3 file, kit is
    another custodian. bob, abe and bea ask in that order; bob's grade-3 loan waits for kim's release; bea
    holds an active grade-2 loan."""
    users.make("abe", Role.APPROVER, Role.BORROWER)
    users.make("kit", Role.CUSTODIAN)
    customer = api.customer()
    plain = api.upload(customer)
    secret = api.upload(customer, grade=3, title="Price list", custodian="kim")
    return {
        "bob": api.loan(plain, "bob"),
        "abe": api.loan(plain, "abe"),
        "bea": api.loan(secret, "bea"),
        "waiting": api.approved_loan(secret, "bob"),
        "active": api.approved_loan(plain, "bea"),
    }


def _ids(api: Any, user: str, query: str) -> list[int]:
    response = api.get(f"{LIST}?{query}", user)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["total"], body["page"], body["pages"]) == (len(body["loans"]), 1, 1)
    return [loan["id"] for loan in body["loans"]]


def _listed(client: FlaskClient, path: str, table: str) -> list[int]:
    """The loans a page's table links to, in its order."""
    page = client.get(path).get_data(as_text=True)
    start = page.index(f'<table class="{table}">')
    return [int(n) for n in re.findall(r'href="/loans/(\d+)"', page[start:page.index("</table>", start)])]


def _browser(app: Any, user: str) -> FlaskClient:
    client = app.test_client()
    login(client, user)
    return client


def test_each_queue_lists_what_its_page_lists(api, app, scene):
    s = scene
    # Requests waiting for a decision, oldest first; an approver's own request is never in their queue.
    assert _ids(api, "ann", "queue=approvals") == [s["bob"], s["abe"], s["bea"]]
    assert _ids(api, "abe", "queue=approvals") == [s["bob"], s["bea"]]
    assert _ids(api, "ann", "status=requested") == [s["bea"], s["abe"], s["bob"]]  # the plain list: newest first
    # The custodian's queue: approved loans waiting for release; and the active loans, due first on top.
    assert _ids(api, "kim", "queue=custody") == [s["waiting"]]
    assert _ids(api, "kim", "queue=custody_active") == [s["active"]]
    assert _ids(api, "kit", "queue=custody&page=2") == [s["waiting"]]  # a page past the end is the last page
    # Exactly what the pages list for the same people.
    for user in ("ann", "abe"):
        assert _listed(_browser(app, user), "/loans/approvals", "queue") == _ids(api, user, "queue=approvals")
    kim = _browser(app, "kim")
    assert _listed(kim, "/loans/custody", "releases") == [s["waiting"]]
    assert _listed(kim, "/loans/custody", "active-loans") == [s["active"]]


def test_a_queue_needs_its_pages_permission_and_clean_parameters(api, rt, scene):
    for user, queue, action in (("bob", "approvals", "loan:approve"), ("kim", "approvals", "loan:approve"),
                                ("ann", "custody", "loan:release"), ("bob", "custody_active", "loan:release")):
        assert_error(api.get(f"{LIST}?queue={queue}", user), 403, "not_permitted")
        assert [(e.actor_name, e.reason_code) for e in events(rt, action, "denied")][-1] == (user, "not_permitted")
    for query, field in (("queue=mine", "queue"), ("queue=", "queue"), ("queue=approvals&mine=1", "mine"),
                         ("queue=custody&status=approved", "status"), ("queue=approvals&page=0", "page"),
                         ("queue=approvals&order=oldest", "order")):
        answer = assert_error(api.get(f"{LIST}?{query}", "ann"), 422, "invalid_request")
        assert field in answer["fields"], (query, answer)


def _context(api: Any, user: str, loan_id: int) -> dict[str, Any]:
    response = api.get(f"{LIST}/{loan_id}/context", user)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["loan"]["id"] == loan_id
    return body


def _acts(body: dict[str, Any]) -> dict[str, str | None]:
    """Each act: "open", or the policy's code why it is closed (with its words)."""
    acts = body["acts"]
    assert all(a["open"] == (a["code"] is None) == (a["error"] is None) for a in acts.values()), acts
    return {name: "open" if a["open"] else a["code"] for name, a in acts.items()}


def test_the_context_of_a_decision_for_approver_custodian_and_borrower(api, app, rt, scene):
    s = scene
    # The approver on bea's grade-3 request: what it will allow, bea's history, the place warning.
    body = _context(api, "ann", s["bea"])
    assert body["allowance"] == {"views": 3, "days": 5, "extra_views": 0, "download": False,
                                 "download_original": False, "trusted_places_only": True, "approvals_required": 1,
                                 "approvals_given": 0, "approvals_after_one_more": 0, "release_required": True}
    assert body["requester_history"] == {"loans": 1, "views": 0, "refusals": 0}  # her active loan
    assert body["customer_history"] == {"loans": 1, "views": 0, "refusals": 0}
    assert body["place_warning"] == {"seen": True}  # no trusted place is known: she was seen outside them all
    assert _acts(body) == {"approve": "open", "reject": "open", "release": "not_permitted",
                           "return": "not_permitted", "revoke": "invalid_state", "withdraw": "not_permitted"}
    # abe on his own request: no history or warning about himself, and the page's reason he may not decide.
    body = _context(api, "abe", s["abe"])
    assert (body["requester_history"], body["customer_history"], body["place_warning"]) == (None, None, None)
    assert body["allowance"]["views"] == 3 and body["allowance"]["download"] is True
    assert _acts(body)["approve"] == "separation_of_duties" and _acts(body)["withdraw"] == "open"
    assert body["acts"]["approve"]["error"] == "Nobody decides on their own request."
    # The borrower of a loan waiting for release.
    body = _context(api, "bob", s["waiting"])
    assert (body["requester_history"], body["place_warning"]) == (None, None)
    assert _acts(body) == {"approve": "not_permitted", "reject": "not_permitted", "release": "not_permitted",
                           "return": "invalid_state", "revoke": "not_permitted",
                           "withdraw": "invalid_state"}
    # The file's custodian releases it; another custodian may not, and is told why (as the page tells them).
    body = _context(api, "kim", s["waiting"])
    assert body["customer_history"] == {"loans": 1, "views": 0, "refusals": 0}  # bob's request of the other file
    assert body["allowance"]["approvals_given"] == 1 and body["place_warning"] == {"seen": True}
    assert _acts(body)["release"] == "open" and _acts(body)["revoke"] == "open"
    body = _context(api, "kit", s["waiting"])
    assert _acts(body)["release"] == "not_the_custodian"
    page = _browser(app, "kit").get(f"/loans/{s['waiting']}").get_data(as_text=True)
    assert f'<span class="why-disabled">{body["acts"]["release"]["error"]}</span>' in page
    # The approver who approved it has decided already; an active loan allows nothing more to decide on.
    assert _acts(_context(api, "ann", s["waiting"]))["approve"] == "already_decided"
    body = _context(api, "kim", s["active"])
    assert (body["allowance"], body["place_warning"]) == (None, None)
    assert _acts(body)["return"] == "open" and _acts(body)["release"] == "invalid_state"
    # Reading someone else's loan and its context is recorded (it names a customer and a file); the
    # borrower's reads of their own are not (tests/api/test_review_loan_reads.py).
    assert [(e.actor_name, e.loan_id, e.outcome) for e in events(rt, "loan:read", None)] == [
        ("ann", s["bea"], "allowed"), ("kim", s["waiting"], "allowed"), ("kit", s["waiting"], "allowed"),
        ("kit", s["waiting"], "allowed"), ("ann", s["waiting"], "allowed"), ("kim", s["active"], "allowed")]


def test_the_context_is_refused_as_the_loan_is(api, rt, scene):
    s = scene
    # Someone else's request, a custodian on a request (not theirs to see yet), an id that does not exist.
    for user, loan_id in (("bea", s["bob"]), ("bob", s["active"]), ("kim", s["bea"]), ("ann", 999_999)):
        assert_error(api.get(f"{LIST}/{loan_id}", user), 404, "not_found")
        answer = assert_error(api.get(f"{LIST}/{loan_id}/context", user), 404, "not_found")
        assert "Visit on Monday" not in str(answer)
    # No loan role at all: refused before anything is read.
    assert_error(api.get(f"{LIST}/{s['bob']}/context", "aud"), 403, "not_permitted")
    refused = [(e.actor_name, e.loan_id, e.reason_code) for e in events(rt, "loan:read", "denied")]
    assert refused == [(user, loan_id, "not_found") for user, loan_id in (
        ("bea", s["bob"]), ("bea", s["bob"]), ("bob", s["active"]), ("bob", s["active"]), ("kim", s["bea"]),
        ("kim", s["bea"]), ("ann", 999_999), ("ann", 999_999))] + [("aud", None, "not_permitted")]
