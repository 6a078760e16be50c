"""Customers through the API: create, search, one customer with its documents, and bad input."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import assert_error, events
from tests.conftest import everyone_works, login
from vault.models import Customer, CustomerRecord, utcnow
from vault.services import upkeep


def test_compiler_creates_a_customer_once_and_it_is_audited(api, rt, cast):
    response = api.post("/api/v1/customers", "carl", json={"name": "Acme Steel", "segment": "vip", "owner": "bob",
                                                          "notes": "met at the fair"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "Acme Steel"
    assert body["segment"] == "vip"
    assert body["owner"]["username"] == "bob"
    # The notes are sealed into the record: never echoed in clear, masked in the record until revealed.
    assert "notes" not in body and "met at the fair" not in response.get_data(as_text=True)
    shown = api.get(f"/api/v1/customers/{body['id']}", "bob")
    assert shown.status_code == 200
    assert "met at the fair" not in shown.get_data(as_text=True)
    assert shown.get_json()["record"]["version"] == 1 and shown.get_json()["record"]["notes"]
    created = events(rt, "customer:create")
    assert [(e.actor_name, e.customer_id, e.subject_user_id) for e in created] == [
        ("carl", body["id"], cast["bob"].id)]
    # The same name again (any case) is a conflict, and nothing more is recorded.
    again = api.post("/api/v1/customers", "carl", json={"name": "acme steel", "segment": "key"})
    assert_error(again, 409, "customer_exists")
    assert len(events(rt, "customer:create")) == 1


def test_owner_defaults_to_the_creator_and_must_exist(api):
    assert api.post("/api/v1/customers", "carl", json={"name": "A", "segment": "key"}).get_json()["owner"][
        "username"] == "carl"
    body = assert_error(api.post("/api/v1/customers", "carl", json={"name": "B", "segment": "key", "owner": "zed"}),
                        422, "invalid_request")
    assert body["fields"] == {"owner": "is not a known user name"}
    # An existing user who cannot own customers is refused by the service, plainly.
    assert_error(api.post("/api/v1/customers", "carl", json={"name": "C", "segment": "key", "owner": "ann"}),
                 400, "invalid_owner")


def test_list_and_search(api):
    for name in ("Acme", "Beta Foods", "acme north"):
        api.customer(name)
    every = api.get("/api/v1/customers", "bob").get_json()
    assert [c["name"] for c in every["customers"]] == ["Acme", "acme north", "Beta Foods"]
    assert (every["total"], every["page"], every["pages"]) == (3, 1, 1)
    found = api.get("/api/v1/customers?q=ACME", "bob").get_json()
    assert [c["name"] for c in found["customers"]] == ["Acme", "acme north"]
    # LIKE wildcards in the search are plain characters.
    assert api.get("/api/v1/customers?q=%25", "bob").get_json()["customers"] == []
    assert_error(api.get("/api/v1/customers?page=0", "bob"), 422, "invalid_request")
    assert_error(api.get("/api/v1/customers?sort=name", "bob"), 422, "invalid_request")
    assert_error(api.get("/api/v1/customers?q=%00", "bob"), 422, "invalid_request")


def test_one_customer_with_the_metadata_of_its_documents(api):
    customer_id = api.customer("Acme")
    first = api.upload(customer_id, grade=1, title="Price list")
    second = api.upload(customer_id, grade=3, title="Contract")
    body = api.get(f"/api/v1/customers/{customer_id}", "bob").get_json()
    assert body["name"] == "Acme"
    assert {d["id"]: (d["title"], d["grade"], d["latest_version"]) for d in body["documents"]} == {
        first: ("Price list", 1, 1), second: ("Contract", 3, 1)}


def test_customer_ids_are_checked(api):
    assert_error(api.get("/api/v1/customers/999", "bob"), 404, "not_found")
    assert_error(api.get("/api/v1/customers/abc", "bob"), 404, "not_found")
    assert_error(api.get("/api/v1/customers/-1", "bob"), 404, "not_found")
    assert_error(api.get("/api/v1/customers/99999999999999999999", "bob"), 404, "not_found")


def test_bad_bodies_get_clear_errors_and_change_nothing(api, rt):
    url = "/api/v1/customers"
    assert_error(api.post(url, "carl", data="name=Acme", content_type="application/x-www-form-urlencoded"),
                 415, "json_required")
    assert_error(api.post(url, "carl", data="{not json", content_type="application/json"), 400, "invalid_json")
    assert_error(api.post(url, "carl", json=["Acme"]), 422, "invalid_request")
    body = assert_error(api.post(url, "carl", json={"segment": "gold", "nmae": "Acme"}), 422, "invalid_request")
    assert body["fields"] == {"name": "is required", "segment": "must be one of: vip, key, ordinary",
                              "nmae": "is not a known field"}
    body = assert_error(api.post(url, "carl", json={"name": 7, "segment": "key"}), 422, "invalid_request")
    assert body["fields"] == {"name": "must be a string"}
    body = assert_error(api.post(url, "carl", json={"name": "   ", "segment": "key"}), 422, "invalid_request")
    assert body["fields"] == {"name": "must not be empty"}
    body = assert_error(api.post(url, "carl", json={"name": "A\u0000B", "segment": "key"}), 422, "invalid_request")
    assert body["fields"] == {"name": "must not contain control characters"}
    body = assert_error(api.post(url, "carl", data='{"name": "\\ud800", "segment": "key"}',
                                 content_type="application/json"), 422, "invalid_request")
    assert body["fields"] == {"name": "must be valid Unicode text"}
    body = assert_error(api.post(url, "carl", json={"name": "x" * 201, "segment": "key"}), 422, "invalid_request")
    assert body["fields"] == {"name": "must be at most 200 characters"}
    assert_error(api.post(url, "carl", data=b'{"name": "' + b"x" * 70000 + b'"}', content_type="application/json"),
                 413, "too_large")
    # A name given twice in one object, at the top or deeper, is refused rather than read as its last value.
    for data in ('{"name": "Acme", "segment": "key", "name": "Other"}',
                 '{"name": "Acme", "segment": "key", "owner": {"id": 1, "id": 2}}'):
        body = assert_error(api.post(url, "carl", data=data, content_type="application/json"), 400, "invalid_json")
        assert '"name" twice' in body["error"] or '"id" twice' in body["error"], body
    assert events(rt, "customer:create") == []
    assert api.get(url, "carl").get_json()["customers"] == []


def test_the_record_currency_is_what_the_customer_page_shows_to_the_same_people(api, rt, app):
    customer_id = api.customer("Acme", shared=False)  # carl's own: bob does not work it yet
    assert_error(api.get(f"/api/v1/customers/{customer_id}", "bob"), 404, "not_found")
    fresh = api.get(f"/api/v1/customers/{customer_id}", "carl").get_json()["currency"]
    with rt.db.session() as session:
        state = upkeep.record_state(rt, session, session.get(Customer, customer_id))
    assert fresh == {"due_on": state.due_on.isoformat(), "overdue": False, "overdue_days": 0,
                     "completeness": state.completeness}
    assert state.due_on == (utcnow() + timedelta(days=rt.settings.records.cadence("key"))).date()
    # Seventy days without an edit or a confirmation: a key customer (60 days) is ten days overdue.
    with rt.db.session() as session:
        customer = session.get(Customer, customer_id)
        customer.created_at -= timedelta(days=70)
        record = session.get(CustomerRecord, customer_id)
        if record is not None:
            record.updated_at = customer.created_at
            record.confirmed_at = None
    everyone_works(rt, customer_id)
    late = api.get(f"/api/v1/customers/{customer_id}", "bob").get_json()["currency"]
    assert (late["overdue"], late["overdue_days"], late["completeness"]) == (True, 10, fresh["completeness"])
    browser = app.test_client()
    login(browser, "bob")
    page = browser.get(f"/customers/{customer_id}").get_data(as_text=True)
    assert "Overdue by 10 days" in page and f"Completeness {late['completeness']}%" in page
