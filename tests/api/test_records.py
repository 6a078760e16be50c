"""The customer record through the API: masked reads, reveals within quotas, edits into versions with diffs,
history for the owner's managers, and the contact log."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.conftest import assert_error, events
from vault.api.serializers import timestamp
from vault.core.context import AccessContext
from vault.models import ContactLogEntry, Customer, Role
from vault.services import accounts, managers, pool, records

pytestmark = pytest.mark.parametrize("settings_overrides", [{"policy": {
    "records": {"reveals_key": 2, "owner_reveals_key": 3, "reveals_per_day": 3}}}])

CONTACTS = [{"name": "Jana Novak", "role": "Buyer", "phones": ["+49 170 5550196"],
             "emails": ["jana@nordlicht.example"], "messaging": {"telegram": "@jananovak77"},
             "birthday": "1980-05-17", "preferences": "Mornings only"}]
TERMS = {"payment": "30 days net", "discount": "7%", "credit_limit": 50000}


@pytest.fixture
def customer(api: Any, rt: Any) -> int:
    customer_id = api.customer("Nordlicht Handel", owner="bob", shared=False)
    response = api.call("PATCH", f"/api/v1/customers/{customer_id}", "bob",
                        json={"city": "Hamburg", "industry": "Wholesale", "status": "active", "contacts": CONTACTS,
                              "terms": TERMS, "notes": "Prefers German-speaking staff"})
    assert response.status_code == 200, response.get_json()
    return customer_id


def _raw(response: Any) -> str:
    return response.get_data(as_text=True)


def _stored_flags(rt: Any, customer_id: int) -> dict[int, bool]:
    """What the contact log itself holds: whether each entry reached the main contact (the handover rule)."""
    with rt.db.session() as session:
        return {e.id: e.main_contact for e in session.scalars(
            select(ContactLogEntry).where(ContactLogEntry.customer_id == customer_id))}


def test_a_read_is_masked_and_names_no_contact(api, customer):
    body = api.get(f"/api/v1/customers/{customer}", "bob").get_json()
    record = body["record"]
    assert record["revealed"] is False and record["city"] == "Hamburg" and record["version"] == 1
    assert record["contacts"][0]["phones"] == ["+49 ••• ••• 96"]
    assert record["contacts"][0]["emails"] == ["j•••@nordlicht.example"]
    assert record["contacts"][0]["messaging"] == {"telegram": "@•••"}
    assert record["terms"] == {"payment": "•••", "discount": "•••", "credit_limit": "•••"}
    text = _raw(api.get(f"/api/v1/customers/{customer}", "bob"))
    for secret in ("5550196", "jana@", "jananovak77", "30 days net", "German-speaking", "Jana Novak"):
        assert secret not in text


def test_a_reveal_shows_everything_and_spends_the_quota(api, rt, customer):
    reveal = {"reason": "Call about the renewal", "place": "Head office"}
    first = api.post(f"/api/v1/customers/{customer}/reveal", "bob", json=reveal)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["record"]["contacts"] == CONTACTS
    assert body["record"]["terms"] == {"payment": "30 days net", "discount": "7%", "credit_limit": "50000"}
    # The owner has the owner's quota (3 for a key customer here), and the daily cap of 3.
    assert (body["remaining"], body["remaining_today"]) == (2, 2)
    for _ in range(2):
        assert api.post(f"/api/v1/customers/{customer}/reveal", "bob", json=reveal).status_code == 200
    assert_error(api.post(f"/api/v1/customers/{customer}/reveal", "bob", json=reveal), 403, "reveal_quota")
    done = events(rt, "customer:reveal")
    assert len(done) == 3 and done[0].reason_text == "Call about the renewal"
    assert events(rt, "customer:reveal", "denied")


def test_a_reveal_needs_a_reason_and_a_place(api, customer):
    # An empty reason is the policy's refusal, as for a view (`tests/api/test_reveal_reasons.py`); a field left
    # out is the body's shape.
    assert_error(api.post(f"/api/v1/customers/{customer}/reveal", "bob", json={"reason": "", "place": "x"}),
                 403, "reason_too_short")
    body = assert_error(api.post(f"/api/v1/customers/{customer}/reveal", "bob",
                                 json={"reason": "Call about the renewal"}), 422, "invalid_request")
    assert body["fields"] == {"place": "is required"}
    # A place nobody can read is no place, as for views: nothing revealed, nothing spent.
    for unreadable in ("-", ". / ."):
        assert_error(api.post(f"/api/v1/customers/{customer}/reveal", "bob",
                              json={"reason": "Call about the renewal", "place": unreadable}), 403, "place_required")
    assert api.post(f"/api/v1/customers/{customer}/reveal", "bob",
                    json={"reason": "Call about the renewal", "place": "Office"}).status_code == 200


def test_the_daily_cap_holds_across_customers(api, rt, customer):
    others = [api.customer(f"Second Customer {i}", owner="bob", shared=False) for i in range(3)]
    reveal = {"reason": "Tour of the region", "place": "Office"}
    answers = [api.post(f"/api/v1/customers/{c}/reveal", "bob", json=reveal).status_code
               for c in [customer, *others]]
    assert answers == [200, 200, 200, 403]
    assert_error(api.post(f"/api/v1/customers/{others[-1]}/reveal", "bob", json=reveal), 403, "reveal_daily_cap")
    # The refused reveal did not spend that customer's quota either: a new day restores both.


def test_only_the_owner_and_co_owners_edit(api, customer):
    assert_error(api.call("PATCH", f"/api/v1/customers/{customer}", "bea", json={"city": "Kiel"}), 404, "not_found")
    # Someone who sees the customer (its compiler) but does not own it is refused, not hidden.
    assert_error(api.call("PATCH", f"/api/v1/customers/{customer}", "carl", json={"city": "Kiel"}), 403, "not_owner")
    bad = api.call("PATCH", f"/api/v1/customers/{customer}", "bob",
                   json={"contacts": [{"name": "X", "emails": ["not-an-address"]}]})
    assert "contacts[0].emails" in assert_error(bad, 422, "invalid_request")["fields"]
    bad = api.call("PATCH", f"/api/v1/customers/{customer}", "bob", json={"status": "bankrupt"})
    assert_error(bad, 422, "invalid_request")


def test_one_messaging_service_named_twice_in_any_case_is_refused(api, rt, customer):
    """The services are the keys of one object, named in lower case: "Telegram" and "telegram" were taken as one
    and the second id silently replaced the first. Both are now refused, nothing is changed."""
    edits = len(events(rt, "customer:edit"))
    for messaging in ({"Telegram": "@jana", "telegram": "@jnovak"}, {"telegram": "@jana", "TELEGRAM ": "@jnovak"}):
        bad = api.call("PATCH", f"/api/v1/customers/{customer}", "bob",
                       json={"contacts": [{"name": "Jana Novak", "messaging": messaging}]})
        fields = assert_error(bad, 422, "invalid_request")["fields"]
        assert fields == {"contacts[0].messaging": "names the service telegram twice (one id per service)"}
    assert len(events(rt, "customer:edit")) == edits
    # Two services, one id each, stand.
    saved = api.call("PATCH", f"/api/v1/customers/{customer}", "bob", json={"contacts": [
        {"name": "Jana Novak", "messaging": {"Telegram": "@jana", "WeChat": "jnovak"}}]})
    assert saved.status_code == 200 and len(events(rt, "customer:edit")) == edits + 1
    shown = api.post(f"/api/v1/customers/{customer}/reveal", "bob", json={"reason": "Renewal call next week",
                                                                        "place": "Office"})
    assert shown.get_json()["record"]["contacts"][0]["messaging"] == {"telegram": "@jana", "wechat": "jnovak"}


def test_an_edit_makes_a_version_whose_diff_the_history_shows(api, rt, users, customer):
    changed = CONTACTS[0] | {"phones": ["+49 170 5550112"]}
    response = api.call("PATCH", f"/api/v1/customers/{customer}", "bob",
                        json={"city": "Lübeck", "contacts": [changed]})
    assert response.get_json()["version"] == 2
    edits = events(rt, "customer:edit")
    assert [json.loads(e.detail)["changed"] for e in edits] == [
        ["city", "industry", "status", "contacts", "terms", "notes"], ["city", "contacts"]]
    history = api.get(f"/api/v1/customers/{customer}/history", "bob")
    versions = history.get_json()["versions"]
    assert [v["number"] for v in versions] == [2, 1]
    assert {(c["field"], c["before"], c["after"]) for c in versions[0]["changes"]} == {
        ("city", "Hamburg", "Lübeck"), ("contacts[0].phones[0]", "+49 ••• ••• 96", "+49 ••• ••• 12")}
    assert "5550112" not in _raw(history)
    # The owner's manager reads the old version; a colleague who sees the customer does not.
    users.make("hana", Role.BORROWER)
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "bob"), accounts.get_user(session, "hana"),
                             actor=None)
    old = api.get(f"/api/v1/customers/{customer}/history/1", "hana")
    assert old.status_code == 200 and old.get_json()["city"] == "Hamburg"
    assert events(rt, "customer:version_read")[0].actor_name == "hana"
    assert_error(api.get(f"/api/v1/customers/{customer}/history", "carl"), 403, "not_in_chain")
    assert_error(api.get(f"/api/v1/customers/{customer}/history/9", "bob"), 404, "not_found")


def test_the_history_names_who_owned_the_customer_as_the_page_does(api, rt, customer):
    moved = api.post(f"/api/v1/customers/{customer}/owner", "ann",
                     json={"owner": "bea", "reason": "Bob moves to the northern team"})
    assert moved.status_code == 200, moved.get_json()
    history = api.get(f"/api/v1/customers/{customer}/history", "bea")
    assert history.status_code == 200, history.get_json()
    ownership = history.get_json()["ownership"]
    assert [(o["action"], o["person"], o["actor"], o["reason"]) for o in ownership] == [
        ("customer:owner", "Bea", "ann", "Bob moves to the northern team"), ("customer:create", "Bob", "carl", None)]
    # The same list, in the same order, as the history page shows.
    with rt.db.session() as session:
        shown = pool.ownership_history(session, session.get(Customer, customer))
    assert [(o["at"], o["action"]) for o in ownership] == [(timestamp(e.at), e.action) for e in shown]
    # Whoever the page refuses, the API refuses: the former owner no longer sees the customer, its compiler
    # sees it but is not in the chain; neither learns who owns it.
    for who, status, code in (("bob", 404, "not_found"), ("carl", 403, "not_in_chain")):
        body = assert_error(api.get(f"/api/v1/customers/{customer}/history", who), status, code)
        assert "ownership" not in body and "Bea" not in str(body)


def test_the_contact_log_is_sealed_and_masked(api, rt, customer):
    entry = {"happened_on": date.today().isoformat(), "channel": "visit", "contact": "Jana Novak",
             "topic": "Renewal of the frame contract", "result": "Agreed in principle", "next_step": "Send offer"}
    created = api.post(f"/api/v1/customers/{customer}/log", "bob", json=entry)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["main_contact"] is None  # not told before a reveal (see below)
    shown = api.get(f"/api/v1/customers/{customer}", "bob")
    line = shown.get_json()["record"]["log"][0]
    assert (line["channel"], line["contact"], line["topic"]) == ("visit", "J••• N•••", "•••")
    assert "frame contract" not in _raw(shown)
    revealed = api.post(f"/api/v1/customers/{customer}/reveal", "bob",
                        json={"reason": "Before a visit", "place": "Office"})
    assert revealed.get_json()["record"]["log"][0]["topic"] == "Renewal of the frame contract"
    # Only people working the customer log; a verification visit is a manager's.
    assert_error(api.post(f"/api/v1/customers/{customer}/log", "carl", json=entry), 403, "not_working")
    assert_error(api.post(f"/api/v1/customers/{customer}/log", "bob", json=entry | {"verification": True}),
                 400, "invalid_log")
    assert_error(api.post(f"/api/v1/customers/{customer}/log", "bob", json=entry | {"happened_on": "2999-01-01"}),
                 400, "invalid_log")


def test_a_manager_logs_a_verification_visit(api, rt, users, customer):
    users.make("hana", Role.BORROWER)
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "bob"), accounts.get_user(session, "hana"),
                             actor=None)
    entry = {"happened_on": date.today().isoformat(), "channel": "visit", "contact": "jana  novák",
             "topic": "Checked the file with the customer", "verification": True}
    created = api.post(f"/api/v1/customers/{customer}/log", "hana", json=entry)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["main_contact"] is None  # hana has not revealed the contacts: not told
    assert _stored_flags(rt, customer)[created.get_json()["id"]] is True  # accents, case and spaces aside
    line = api.get(f"/api/v1/customers/{customer}", "hana").get_json()["record"]["log"][0]
    assert (line["verification"], line["author"]) == (True, "Hana")
    logged = events(rt, "customer:log")
    assert json.loads(logged[-1].detail)["verification"] is True and "Checked" not in logged[-1].detail


@pytest.mark.parametrize(("contact", "field"), [
    ({"name": "X", "messaging": 0}, "contacts[0].messaging"),
    ({"name": "X", "messaging": []}, "contacts[0].messaging"),
    ({"name": "X", "main": 1}, "contacts[0].main"),
    ({"name": "X", "birthday": "19840212"}, "contacts[0].birthday"),
    ({"name": "X", "birthday": "1984-W07-1"}, "contacts[0].birthday"),
])
def test_a_contact_takes_each_field_in_its_own_form_only(api, customer, contact, field):
    """0 and [] were taken as no messaging, 1 as a main contact, and the ISO basic and week forms as a
    birthday that then read as nothing a person recognises."""
    bad = api.call("PATCH", f"/api/v1/customers/{customer}", "bob", json={"contacts": [contact]})
    assert field in assert_error(bad, 422, "invalid_request")["fields"]


@pytest.mark.parametrize("day", ["20261201", "2026-W49-1", "２０２６-12-01"])
def test_a_logged_contact_s_date_is_written_yyyy_mm_dd(api, customer, day):
    entry = {"happened_on": day, "channel": "visit", "contact": "Jana Novak", "topic": "Renewal"}
    bad = api.post(f"/api/v1/customers/{customer}/log", "bob", json=entry)
    assert "happened_on" in assert_error(bad, 422, "invalid_request")["fields"]


def test_the_contact_log_does_not_confirm_a_guessed_main_contact(api, rt, clock, customer):
    """The main contact's name is masked ("J••• N•••") until revealed; a log's answer saying whether the name
    typed is the main contact's confirmed guesses for free, to anyone who may log (the owner, co-owners, their
    managers, a successor), and so did the masked log's flag of one's own entry. Now both say nothing (null)
    to someone whose reveal does not show them the contacts (none yet, the record changed since, or older
    than 12 hours), the same for a right and a wrong guess; the contact log still knows, for the handover."""
    def log(name: str) -> dict[str, Any]:
        created = api.post(f"/api/v1/customers/{customer}/log", "bob", json={
            "happened_on": date.today().isoformat(), "channel": "call", "contact": name, "topic": "Check in"})
        assert created.status_code == 201, created.get_json()
        return created.get_json()

    def masked_flags() -> list[Any]:
        record = api.get(f"/api/v1/customers/{customer}", "bob").get_json()["record"]
        assert record["revealed"] is False
        return [line["main_contact"] for line in record["log"]]

    def reveal() -> list[Any]:
        shown = api.post(f"/api/v1/customers/{customer}/reveal", "bob",
                         json={"reason": "Before calling the buyer", "place": "Office"})
        assert shown.status_code == 200, shown.get_json()
        return [line["main_contact"] for line in shown.get_json()["record"]["log"]]

    right, wrong = log("jana novák"), log("Petra Novak")
    assert right["main_contact"] is None and wrong["main_contact"] is None
    assert masked_flags() == [None, None]
    stored = _stored_flags(rt, customer)
    assert (stored[right["id"]], stored[wrong["id"]]) == (True, False)  # the log knows, for the handover
    assert json.loads(events(rt, "customer:log")[-2].detail)["main_contact"] is True  # and so does the audit
    # Once the contacts are revealed to the person, their log's answer says it.
    assert reveal() == [False, True]  # newest first: the wrong guess, then the right one
    assert (log("Jana Novak")["main_contact"], log("Petra Novak")["main_contact"]) == (True, False)
    assert masked_flags() == [None] * 4  # a masked read still tells nobody
    # The record changed since the reveal: its contacts may not be those the person saw.
    assert api.call("PATCH", f"/api/v1/customers/{customer}", "bob", json={"city": "Kiel"}).status_code == 200
    assert log("Jana Novak")["main_contact"] is None
    reveal()
    assert log("Jana Novak")["main_contact"] is True
    clock.advance(timedelta(hours=13))  # a reveal shows the contacts for 12 hours
    assert log("Jana Novak")["main_contact"] is None


def test_the_contact_marked_main_is_the_one_a_log_entry_reaches(api, rt, customer):
    """Was: a log entry counted as reaching the main contact only when it named the first contact, while the
    letters (and the record's own `main` mark) take the contact marked main: reaching the marked one did
    not count for the handover of a key customer, and reaching the first, unmarked one did."""
    contacts = [{"name": "Jana Novak", "role": "Buyer"}, {"name": "Karl Berger", "role": "Director", "main": True}]
    edited = api.call("PATCH", f"/api/v1/customers/{customer}", "bob", json={"contacts": contacts})
    assert edited.status_code == 200, edited.get_json()

    def logged(name: str) -> int:
        created = api.post(f"/api/v1/customers/{customer}/log", "bob", json={
            "happened_on": date.today().isoformat(), "channel": "visit", "contact": name, "topic": "Renewal talk"})
        assert created.status_code == 201, created.get_json()
        return created.get_json()["id"]

    marked, first = logged("Karl Berger"), logged("Jana Novak")
    stored = _stored_flags(rt, customer)
    assert (stored[marked], stored[first]) == (True, False)


def test_an_edit_from_an_older_version_is_refused_and_saves_nothing(api, rt, customer):
    """An edit may say which version of the record it was made from. Without it, two people editing from the
    same read each saved over the other unseen; with it, a record changed since answers 409
    `record_changed` and keeps the other's change, and an edit from the version the record has goes
    through. Left out, an edit is made over whatever version there is, as before."""
    path = f"/api/v1/customers/{customer}"
    version = api.get(path, "bob").get_json()["record"]["version"]
    # Bob's own save since is his to overwrite (a second tab, a request sent again)...
    assert api.call("PATCH", path, "bob", json={"city": "Celle", "version": version}).status_code == 200
    assert api.call("PATCH", path, "bob", json={"city": "Kiel", "version": version}).status_code == 200
    version += 2
    # ...another's is not: here the product's own, made without a person.
    with rt.db.session() as session:
        records.edit(rt, session, None, session.get(Customer, customer), {"industry": "Shipping"},
                     ctx=AccessContext.cli())
    stale = api.call("PATCH", path, "bob", json={"city": "Lübeck", "version": version})
    assert_error(stale, 409, "record_changed")
    assert f"now version {version + 1}, by the system" in stale.get_json()["error"]
    assert api.get(path, "bob").get_json()["record"]["city"] == "Kiel"
    assert [json.loads(e.detail)["version"] for e in events(rt, "customer:edit")][-1] == version + 1
    for bad in ("2", -1, 1.5, True, 2**31):
        assert_error(api.call("PATCH", path, "bob", json={"city": "Lübeck", "version": bad}), 422,
                     "invalid_request")
    assert api.call("PATCH", path, "bob", json={"city": "Lübeck", "version": version + 1}).status_code == 200
    assert api.call("PATCH", path, "bob", json={"city": "Bremen"}).status_code == 200
    assert api.get(path, "bob").get_json()["record"]["city"] == "Bremen"
