"""View quota overrides through the API, on both databases: a custodian sets one person's quota, an
approver everyone's, both go back to the default with `views: null`, the custodians' list shows what the
custody page shows, and every refusal of the policy is the page's, recorded, with nothing changed."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.conftest import assert_error, events
from vault.core.context import AccessContext
from vault.models import Departure, Document, QuotaUsage, Role
from vault.services import accounts, departures, quota


@pytest.fixture
def files(api: Any, users: Any) -> dict[str, int]:
    """cat approves and compiles (her own file: no quota of it is hers to set); kip keeps files and borrows
    (no quota at all is his to set). carl's second file is on a customer kim does not work."""
    users.make("cat", Role.APPROVER, Role.COMPILER)
    users.make("kip", Role.CUSTODIAN, Role.BORROWER)
    customer = api.customer()
    return {"doc": api.upload(customer), "cats": api.upload(customer, user="cat", title="Cat's plan"),
            "hidden": api.upload(api.customer("Hidden", shared=False), title="Hidden plan")}


def _path(document_id: int) -> str:
    return f"/api/v1/documents/{document_id}/quota"


def _remaining(api: Any, document_id: int, person: str) -> int:
    return api.get(f"/api/v1/documents/{document_id}", person).get_json()["remaining_views"]


def _state(rt: Any, document_id: int) -> tuple[int | None, list[tuple[int, int | None]]]:
    with rt.db.session() as session:
        rows = session.execute(select(QuotaUsage.user_id, QuotaUsage.view_quota)
                               .where(QuotaUsage.document_id == document_id))
        return session.get(Document, document_id).view_quota, sorted((user, views) for user, views in rows)


def test_custodians_and_approvers_set_quotas_and_custodians_list_them(api, rt, cast, files):
    doc = files["doc"]
    assert _remaining(api, doc, "bob") == 3  # the grade's number
    assert api.get("/api/v1/quota-overrides", "kim").get_json() == {"overrides": []}
    # A custodian sets one person's quota.
    response = api.post(_path(doc), "kim", json={"views": 5, "person": " bob "})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"document": {"id": doc, "title": "Annual report", "grade": 2},
                                   "person": {"id": cast["bob"].id, "username": "bob", "display_name": "Bob"},
                                   "views": 5}
    # An approver sets everyone's.
    response = api.post(_path(doc), "ann", json={"views": 7, "person": None})
    assert response.status_code == 200 and response.get_json()["person"] is None
    assert (_remaining(api, doc, "bob"), _remaining(api, doc, "bea")) == (5, 7)
    listed = api.get("/api/v1/quota-overrides", "kim").get_json()["overrides"]
    assert [(o["document"]["id"], o["person"] and o["person"]["username"], o["views"]) for o in listed] == [
        (doc, None, 7), (doc, "bob", 5)]
    # Back to the defaults: bob's to the document's number, the document's to the grade's.
    assert api.post(_path(doc), "kim", json={"views": None, "person": "bob"}).get_json()["views"] is None
    assert api.post(_path(doc), "ann", json={"views": None, "person": ""}).status_code == 200
    assert (_remaining(api, doc, "bob"), _remaining(api, doc, "bea")) == (3, 3)
    assert api.get("/api/v1/quota-overrides", "kim").get_json() == {"overrides": []}
    # Each setting recorded as on the page, with the number it replaced.
    recorded = [(e.actor_name, e.document_id, e.subject_user_id, json.loads(e.detail))
                for e in events(rt, "quota:override")]
    assert [(actor, document, subject, d["scope"], d["views"], d["previous"])
            for actor, document, subject, d in recorded] == [
        ("kim", doc, cast["bob"].id, "person", 5, None), ("ann", doc, None, "document", 7, None),
        ("kim", doc, cast["bob"].id, "person", None, 5), ("ann", doc, None, "document", None, 7)]


def test_quota_refusals_are_the_pages_and_change_nothing(api, rt, cast, files):
    doc = files["doc"]
    refusals = [
        ("kim", doc, {"views": 5}, 403, "quota_document_wide"),  # everyone's quota is an approver's call
        ("kim", doc, {"views": 5, "person": "kim"}, 403, "quota_own_reach"),
        ("kip", doc, {"views": 5, "person": "bob"}, 403, "quota_own_reach"),  # may borrow himself
        ("cat", files["cats"], {"views": 5, "person": "bob"}, 403, "separation_of_duties"),
        ("kim", doc, {"views": 5, "person": "nobody"}, 403, "quota_unknown_person"),
        ("kim", doc, {"views": -1, "person": "bob"}, 403, "quota_invalid"),
        ("ann", doc, {"views": 1001}, 403, "quota_invalid"),
        ("kim", files["hidden"], {"views": 5, "person": "bob"}, 404, "not_found"),
        ("kim", 999999, {"views": 5, "person": "bob"}, 404, "not_found"),
        ("bob", doc, {"views": 50, "person": "bea"}, 403, "not_permitted"),
        ("carl", doc, {"views": 5, "person": "bob"}, 403, "not_permitted"),
        ("kim", doc, {"person": "bob"}, 422, "invalid_request"),  # say null to go back to the default
        ("kim", doc, {"views": "5", "person": "bob"}, 422, "invalid_request"),
        ("kim", doc, {"views": 5, "person": 7}, 422, "invalid_request"),
        ("kim", doc, {"views": 5, "person": "b" * 65}, 422, "invalid_request"),
        ("kim", doc, {"views": 5, "who": "bob"}, 422, "invalid_request"),
    ]
    before = {d: _state(rt, d) for d in (doc, files["cats"], files["hidden"])}
    for person, document_id, body, status, code in refusals:
        assert_error(api.post(_path(document_id), person, json=body), status, code)
    assert_error(api.post(_path(doc), "ann", data="views=5"), 415, "json_required")
    assert {d: _state(rt, d) for d in before} == before
    assert events(rt, "quota:override") == []
    # The policy's refusals are recorded as on the page (the body checks come before anyone is asked).
    denied = [(e.actor_name, e.reason_code) for e in events(rt, "quota:override", "denied")]
    assert denied == [(p, c) for p, _d, _b, s, c in refusals if s != 422]
    # The list is the custody page's: custodians only.
    for person in ("ann", "bob", "aud"):
        assert_error(api.get("/api/v1/quota-overrides", person), 403, "not_permitted")


def test_nobody_raises_the_quota_of_a_person_on_notice(api, rt, cast, files):
    """Bob gave notice: more views of a file are an extension that two approvers decide, so one custodian
    no longer gives him more through his own quota (403 `quota_person_departing`, recorded, nothing
    changed); lowering it stays open, and Bea, who is not leaving, is set as before."""
    doc = files["doc"]
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, accounts.get_user(session, "bob"),
                                   last_day=departures.today(rt.settings) + timedelta(days=20), successor=None,
                                   ctx=AccessContext.cli())
    assert_error(api.post(_path(doc), "kim", json={"views": 500, "person": "bob"}), 403, "quota_person_departing")
    assert _state(rt, doc) == (None, [])
    [refused] = events(rt, "quota:override", "denied")
    assert (refused.reason_code, refused.subject_user_id, refused.document_id) == (
        "quota_person_departing", cast["bob"].id, doc)
    assert api.post(_path(doc), "kim", json={"views": 1, "person": "bob"}).status_code == 200
    assert_error(api.post(_path(doc), "kim", json={"views": None, "person": "bob"}), 403, "quota_person_departing")
    assert api.post(_path(doc), "kim", json={"views": 9, "person": "bea"}).status_code == 200
    assert _state(rt, doc) == (None, [(cast["bob"].id, 1), (cast["bea"].id, 9)])


def test_a_document_wide_raise_does_not_lift_a_person_on_notice(api, rt, cast, files):
    """Bob gave notice; an approver then raised the file's quota for everyone, which lifted Bob too, above
    what the notice allows (his own quota may not be raised, `quota_person_departing`): one person's decision
    widened a leaver's reach. Now, for a person on notice, the quota is the lowest of the grade's, the
    file's and their own: a document-wide raise, or a raise of their own given before the notice, gives them
    nothing while they are on notice, and a lowering still counts. The views are spent against that limit
    (the counter's statement itself, on both databases); colleagues who are not leaving get the raise; a
    withdrawn notice gives Bob his own quota back."""
    doc = files["doc"]
    api.approved_loan(doc, "bob")
    assert api.post(_path(doc), "kim", json={"views": 10, "person": "bob"}).status_code == 200
    with rt.db.session() as session:
        departure = departures.start_departure(rt, session, None, accounts.get_user(session, "bob"),
                                               last_day=departures.today(rt.settings) + timedelta(days=20),
                                               successor=None, ctx=AccessContext.cli()).id
    assert api.post(_path(doc), "ann", json={"views": 50, "person": None}).status_code == 200
    assert (_remaining(api, doc, "bob"), _remaining(api, doc, "bea")) == (3, 50)  # the grade's, for Bob
    for _ in range(3):
        assert api.open_view(doc, "bob").status_code == 201
    assert_error(api.open_view(doc, "bob"), 403, "quota_exhausted")
    assert _remaining(api, doc, "bob") == 0
    # A lowering for everyone counts for him too.
    assert api.post(_path(doc), "ann", json={"views": 2, "person": None}).status_code == 200
    with rt.db.session() as session:
        bob = accounts.get_user(session, "bob")
        assert quota.limit_for(rt.settings, session, bob.id, session.get(Document, doc)) == 2
    # Withdrawn: his own quota (10) is his again.
    with rt.db.session() as session:
        departures.withdraw(rt, session, None, session.get(Departure, departure),
                            reason="Stays after all: a counter-offer", ctx=AccessContext.cli())
    assert _remaining(api, doc, "bob") == 10 - 3
    assert api.open_view(doc, "bob").status_code == 201
