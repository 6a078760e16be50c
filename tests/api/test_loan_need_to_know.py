"""Need to know and separation of duties around loans and quotas, on both databases: what custodians and
approvers see because of their work (a queue, a file they keep) ends with that work, a list of their desk
never names the files of customers they do not work, and no approver counts twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from tests.conftest import login
from vault.config.settings import DEFAULT_GRADES
from vault.models import Role, utcnow
from vault.services import accounts, quota

OVERRIDES = "/api/v1/quota-overrides"
BATCH = "/api/v1/loans/approve"
TWO_APPROVERS = {"grades": {**DEFAULT_GRADES, 2: replace(DEFAULT_GRADES[2], approvals=2)}}


@pytest.fixture
def files(api: Any, users: Any) -> dict[str, int]:
    """kit keeps carl's grade-3 file of a customer nobody else works ("Hidden"); kim keeps nothing there."""
    users.make("kit", Role.CUSTODIAN)
    hidden = api.customer("Hidden", shared=False)
    return {"plain": api.upload(api.customer()),
            "hidden": api.upload(hidden, grade=3, title="Hidden plan", custodian="kit")}


def _listed(api: Any, who: str) -> list[tuple[str, str | None]]:
    answer = api.get(OVERRIDES, who)
    assert answer.status_code == 200, answer.get_json()
    return [(o["document"]["title"], o["person"] and o["person"]["username"]) for o in answer.get_json()["overrides"]]


def test_the_overrides_list_names_only_files_the_custodian_sees(api, app, rt, files):
    # kit keeps the hidden file: he sets bob's quota of it; kim sets bob's of the plain one.
    assert api.post(f"/api/v1/documents/{files['hidden']}/quota", "kit",
                    json={"views": 9, "person": "bob"}).status_code == 200
    assert api.post(f"/api/v1/documents/{files['plain']}/quota", "kim",
                    json={"views": 5, "person": "bob"}).status_code == 200
    # kim cannot reach the hidden file (404), so her list does not name it either; kit's lists both.
    assert api.get(f"/api/v1/documents/{files['hidden']}", "kim").status_code == 404
    assert _listed(api, "kim") == [("Annual report", "bob")]
    assert _listed(api, "kit") == [("Annual report", "bob"), ("Hidden plan", "bob")]
    # The custody page lists the same.
    client = app.test_client()
    login(client, "kim")
    page = client.get("/loans/custody").get_data(as_text=True)
    assert "Annual report" in page and "Hidden plan" not in page
    assert [e.actor_name for e in events(rt, "quota:override")] == ["kit", "kim"]


def test_an_approved_extension_does_not_open_its_customer_to_every_approver_and_custodian(api, rt):
    """An extension adds views and stays approved as long as they count: it is no loan in anyone's queue."""
    customer = api.customer("Nordlicht", owner="bob", shared=False)  # bob's alone (and carl's, who made it)
    document_id = api.upload(customer)
    with rt.db.session() as session:  # bob has spent his views (a quota of 0 for him)
        quota.set_person_quota(session, accounts.get_user(session, "bob").id, document_id, 0)
    extension = api.loan(document_id, "bob", kind="extension", extra_views=2)
    # While it waits, approvers see the customer (it is in their queue); custodians do not.
    assert api.get(f"/api/v1/customers/{customer}", "ann").status_code == 200
    assert api.get(f"/api/v1/customers/{customer}", "kim").status_code == 404
    assert api.post(f"/api/v1/loans/{extension}/approve", "ann", json={"comment": "ok"}).status_code == 200
    assert api.get(f"/api/v1/loans/{extension}", "bob").get_json()["status"] == "approved"
    # Approved, it is nobody's work any more: no approver nor custodian sees the customer through it.
    for who in ("ann", "kim"):
        assert api.get("/api/v1/customers", who).get_json()["customers"] == [], who
        assert api.get(f"/api/v1/customers/{customer}", who).status_code == 404, who
    # The extension itself stays revocable by custodians and approvers (a leaver's extra views).
    assert api.get(f"/api/v1/loans/{extension}", "kim").status_code == 200
    assert api.post(f"/api/v1/loans/{extension}/revoke", "kim",
                    json={"reason": "The borrower is leaving the company"}).status_code == 200


@pytest.mark.parametrize("settings_overrides", [TWO_APPROVERS])
def test_one_approver_never_makes_two_approvals_and_extensions_keep_the_duties_apart(api, rt, users,
                                                                                      settings_overrides):
    """A grade needing two approvals is not met by one approver repeating an id in a batch, nor by a batch after
    a single approval; an extension is decided under the same separation of duties as a loan."""
    users.make("abe", Role.APPROVER, Role.BORROWER)
    users.make("cat", Role.APPROVER, Role.COMPILER)
    customer = api.customer()
    document_id, cats = api.upload(customer), api.upload(customer, user="cat", title="Cat's plan")
    loan_id = api.loan(document_id)
    body = api.post(BATCH, "ann", json={"loan_ids": [loan_id, loan_id, loan_id]}).get_json()
    assert (body["approved"], body["refused"]) == ([loan_id], [])
    body = api.post(BATCH, "ann", json={"loan_ids": [loan_id]}).get_json()
    assert [r["code"] for r in body["refused"]] == ["already_decided"]
    assert_error(api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={}), 403, "already_decided")
    loan = api.get(f"/api/v1/loans/{loan_id}", "bob").get_json()
    assert (loan["status"], len(loan["decisions"])) == ("requested", 1)
    # Extensions: abe's own is refused to him, one of cat's file to her, alone or in a batch.
    with rt.db.session() as session:
        for who, doc in (("abe", document_id), ("bob", cats)):
            quota.set_person_quota(session, accounts.get_user(session, who).id, doc, 0)
    own, of_cats = (api.loan(document_id, "abe", kind="extension", extra_views=2),
                    api.loan(cats, "bob", kind="extension", extra_views=2))
    assert_error(api.post(f"/api/v1/loans/{own}/approve", "abe", json={}), 403, "separation_of_duties")
    body = api.post(BATCH, "cat", json={"loan_ids": [of_cats, own]}).get_json()
    assert body["approved"] == [own]
    assert [(r["id"], r["code"]) for r in body["refused"]] == [(of_cats, "separation_of_duties")]
    refused = [(e.actor_name, e.loan_id, e.reason_code) for e in events(rt, "loan:approve", "denied")]
    assert refused == [("ann", loan_id, "already_decided"), ("ann", loan_id, "already_decided"),
                       ("abe", own, "separation_of_duties"), ("cat", of_cats, "separation_of_duties")]


def _on_notice(api: Any, person: str) -> None:
    today = utcnow().date()
    started = api.post("/api/v1/departures", "adm", json={"person": person, "last_day": str(today + timedelta(days=14)),
                                                          "notice_date": str(today)})
    assert started.status_code == 201, started.get_json()


@pytest.mark.parametrize("settings_overrides", [{}, {"policy": {"departure": {"on_notice": "refuse"}}}])
def test_a_confidential_loan_approved_before_the_notice_is_released_under_the_notices_rules(api, rt, users,
                                                                                          settings_overrides):
    """The release is the last decision on a grade-3 loan: one approved the day before the borrower gave notice
    is not handed out on the old rules (with "refuse" not at all, by default not on one approval)."""
    users.make("abe", Role.APPROVER)
    refuse = bool(settings_overrides)
    secret = api.upload(api.customer(), grade=3, title="Price list", custodian="kim")
    loan_id = api.approved_loan(secret, "bob")
    _on_notice(api, "bob")
    code = "departing_refused" if refuse else "approvals_missing"
    context = api.get(f"/api/v1/loans/{loan_id}/context", "kim").get_json()
    assert (context["acts"]["release"]["open"], context["acts"]["release"]["code"]) == (False, code)
    assert_error(api.post(f"/api/v1/loans/{loan_id}/release", "kim", json={}), 403, code)
    assert api.get(f"/api/v1/loans/{loan_id}", "kim").get_json()["status"] == "approved"
    assert [(e.actor_name, e.loan_id, e.reason_code) for e in events(rt, "loan:release", "denied")] == [
        ("kim", loan_id, code)]
    assert events(rt, "loan:release") == []
    # A loan approved after the notice as the notice asks (two approvers) is released as usual.
    if not refuse:
        other = api.upload(api.customer("Other"), grade=3, title="Terms", custodian="kim")
        second = api.loan(other, "bob")
        for approver in ("ann", "abe"):
            assert api.post(f"/api/v1/loans/{second}/approve", approver, json={}).status_code == 200
        assert api.post(f"/api/v1/loans/{second}/release", "kim", json={}).get_json()["status"] == "active"


def test_an_approver_whose_customer_access_is_suspended_sees_no_queue_until_it_is_lifted(api, app, rt):
    """A directory alert suspends a person's sight of customers; the approvals queue, which names every customer
    with a request open, is no way around it (their own requests and what they decided stay theirs)."""
    customer = api.customer("Nordlicht", owner="bob", shared=False)
    loan_id = api.loan(api.upload(customer, title="Price list"), "bob")
    decided = api.loan(api.upload(customer, title="Terms"), "bob")
    assert api.post(f"/api/v1/loans/{decided}/reject", "ann", json={"comment": "Not for this visit"}).status_code == 200
    assert [loan["id"] for loan in api.get("/api/v1/loans?queue=approvals", "ann").get_json()["loans"]] == [loan_id]
    with rt.db.session() as session:
        accounts.get_user(session, "ann").customers_suspended_at = utcnow()
    assert api.get("/api/v1/loans?queue=approvals", "ann").get_json()["loans"] == []
    assert [loan["id"] for loan in api.get("/api/v1/loans", "ann").get_json()["loans"]] == [decided]
    for path in (f"/api/v1/loans/{loan_id}", f"/api/v1/loans/{loan_id}/context"):
        assert_error(api.get(path, "ann"), 404, "not_found")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={}), 404, "not_found")
    assert [(e.actor_name, e.loan_id) for e in events(rt, "loan:approve", "denied")] == [("ann", loan_id)]
    client = app.test_client()
    login(client, "ann")
    page = client.get("/loans/approvals").get_data(as_text=True)
    assert "Nordlicht" not in page and "Price list" not in page
    with rt.db.session() as session:
        accounts.get_user(session, "ann").customers_suspended_at = None
    assert api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={}).get_json()["status"] == "active"
