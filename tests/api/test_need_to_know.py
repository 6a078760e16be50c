"""Need to know: each person sees exactly the customers they work, reaches any other only by an audited
look-up, and reads of the directory feed the early warning and the departure report.

The organisation of these tests: Vera runs sales, Hana leads a team under her, Eva and Bob sell in Hana's
team, Bea sells on her own; Carl compiles files, Ann approves, Kim keeps files, Aud audits, Adm administers.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from tests.api.conftest import assert_error, events
from vault.core.context import AccessContext
from vault.models import Alert, CustomerAccess, Departure, Role, User
from vault.services import accounts, departures, managers

pytestmark = pytest.mark.parametrize("settings_overrides", [{"policy": {
    "working_hours": {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                      "start": 0, "end": 24},
    "alerts": {"directory_per_hour": 15, "new_place": False}}}])


def _listed(api: Any, who: str) -> set[str]:
    answer = api.get("/api/v1/customers", who)
    assert answer.status_code == 200, answer.get_json()
    return {c["name"] for c in answer.get_json()["customers"]}


def test_each_person_sees_exactly_the_customers_they_work(api, rt, org):
    assert _listed(api, "eva") == {"Ibérica Logística"}
    assert _listed(api, "bob") == {"Nordlicht Handel"}
    assert _listed(api, "bea") == {"Ibérica Logística", "Adriatic Foods"}  # her own and the co-owned one
    assert _listed(api, "hana") == {"Ibérica Logística", "Nordlicht Handel"}  # her team's
    assert _listed(api, "vera") == {"Ibérica Logística", "Nordlicht Handel"}  # down the whole chain
    assert _listed(api, "carl") == {"Carl Direct", "Ibérica Logística", "Nordlicht Handel",
                                    "Adriatic Foods"}  # the compiler created them all
    assert _listed(api, "ann") == set()  # nothing in the approver's queue yet
    assert _listed(api, "kim") == set()
    for who in ("aud", "adm"):
        assert api.get("/api/v1/customers", who).status_code == 403
    # Every other id is a 404, recorded like a probe, whether it exists or not.
    mark = len(events(rt, "customer:read", "denied"))
    for customer_id in (org['bob'], org['bea'], 999_999):
        assert_error(api.get(f"/api/v1/customers/{customer_id}", "eva"), 404, "not_found")
    refusals = events(rt, "customer:read", "denied")[mark:]
    assert [(e.actor_name, e.reason_code) for e in refusals] == [("eva", "not_found")] * 3
    # A list is recorded with the ids it returned; a read with its customer.
    assert json.loads(events(rt, "customer:list")[-1].detail)["ids"] == []
    api.get(f"/api/v1/customers/{org['eva']}", "eva")
    assert events(rt, "customer:read")[-1].customer_id == org['eva']


def test_an_approver_sees_a_customer_while_a_loan_of_it_is_in_the_queue(api, rt, org):
    document_id = api.upload(org['bob'], grade=2)
    assert _listed(api, "ann") == set()
    loan_id = api.loan(document_id, "bob")
    assert _listed(api, "ann") == {"Nordlicht Handel"}
    api.post(f"/api/v1/loans/{loan_id}/reject", "ann", json={"comment": "Not needed for this visit"})
    assert _listed(api, "ann") == set()


def test_a_look_up_is_short_bounded_audited_and_opens_the_customer_for_a_day(api, rt, org, clock):
    assert_error(api.get("/api/v1/customers/lookup?q=ibe", "bob"), 400, "query_too_short")
    found = api.get("/api/v1/customers/lookup?q=iberica", "bob").get_json()["customers"]  # accents ignored
    assert [c["name"] for c in found] == ["Ibérica Logística"]
    (lookup,) = [e for e in events(rt, "customer:lookup") if e.actor_name == "bob"]
    assert json.loads(lookup.detail) == {"query": "iberica", "ids": [org['eva']], "today": 1, "cap": 20}
    # Found, the customer is open to Bob for a day, and no longer after.
    assert api.get(f"/api/v1/customers/{org['eva']}", "bob").status_code == 200
    clock.advance(timedelta(hours=25))
    assert_error(api.get(f"/api/v1/customers/{org['eva']}", "bob"), 404, "not_found")
    # Never more than five answers, however wide the query.
    for n in range(8):
        api.customer(f"Wide Lookup {n}", owner="bea", shared=False)
    wide = api.get("/api/v1/customers/lookup?q=wide lookup", "eva").get_json()["customers"]
    assert len(wide) == 5


def test_who_works_a_customer_is_decided_above_the_people_working_it(api, rt, org):
    bob_customer = org['bob']
    # Nobody gives themselves a customer, not even a manager; a colleague cannot hand one over.
    assert_error(api.post(f"/api/v1/customers/{bob_customer}/co-owners", "hana", json={"user": "hana"}), 403,
                 "own_gain")
    assert_error(api.post(f"/api/v1/customers/{bob_customer}/owner", "eva", json={"owner": "eva"}), 404,
                 "not_found")
    assert api.post(f"/api/v1/customers/{bob_customer}/owner", "vera", json={"owner": "eva", "reason": "Rotation"}
                    ).status_code == 200
    assert _listed(api, "eva") == {"Ibérica Logística", "Nordlicht Handel"}
    assert _listed(api, "bob") == set()
    (change,) = events(rt, "customer:owner")
    assert (change.actor_name, change.customer_id, json.loads(change.detail)["to"]) == (
        "vera", bob_customer, accounts_id(rt, "eva"))
    # Three co-owners at most.
    for name in ("bob", "hana", "bea"):
        assert api.post(f"/api/v1/customers/{bob_customer}/co-owners", "ann", json={"user": name}).status_code == 200
    assert_error(api.post(f"/api/v1/customers/{bob_customer}/co-owners", "ann", json={"user": "vera"}), 403,
                 "too_many_co_owners")


def accounts_id(rt: Any, username: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(User.id).where(User.username == username))


def test_twenty_customers_in_an_hour_raise_one_directory_sweep(api, rt, users):
    users.make("hana", Role.BORROWER)
    ids = [api.customer(f"Sweep Target {n:02d}", owner="bea", shared=False) for n in range(20)]
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "bea"), accounts.get_user(session, "hana"),
                             actor=None)
    for customer_id in ids:
        assert api.get(f"/api/v1/customers/{customer_id}", "hana").status_code == 200
    alerts = api.get("/api/v1/alerts?rule=directory_sweep", "ann").get_json()["alerts"]
    assert [(a["rule"], a["severity"], a["user"]["username"]) for a in alerts] == [
        ("directory_sweep", "high", "hana")]
    assert alerts[0]["occurrences"] == 20 - 15


def test_a_leaver_reading_outside_their_book_is_an_alert_and_the_report_names_the_customers(api, rt, org):
    with rt.db.session() as session:
        eva = accounts.get_user(session, "eva")
        departures.start_departure(rt, session, None, eva, last_day=departures.today(rt.settings) + timedelta(days=10),
                                   successor=None, ctx=AccessContext.cli())
    # Eva looks up Bob's customer (outside her book) and reads it; she opens no file of it.
    assert api.get("/api/v1/customers/lookup?q=nordlicht", "eva").status_code == 200
    assert api.get(f"/api/v1/customers/{org['bob']}", "eva").status_code == 200
    with rt.db.session() as session:
        outside = session.scalars(select(Alert).where(Alert.rule == "outside_book")).all()
        assert [(a.user.username, json.loads(a.evidence_json)["customers"]) for a in outside] == [
            ("eva", [org['bob']])]
        assert {(a.kind, a.customer_id) for a in session.scalars(select(CustomerAccess))} >= {
            ("lookup", org['bob']), ("read", org['bob'])}
    report = api.get(f"/api/v1/departures/{_departure_id(rt)}/report?format=csv", "aud")
    assert report.status_code == 200
    rows = [r for r in csv.DictReader(io.StringIO(report.get_data(as_text=True).lstrip("\ufeff")))
            if r["kind"] == "customer"]
    read = {r["customer"]: (r["read"], r["looked_up"], r["files"]) for r in rows}
    assert read["Nordlicht Handel"] == ("1", "1", "0")
    # The PDF, the form HR files, names it too: among the customers, and nowhere among the documents.
    pdf = api.get(f"/api/v1/departures/{_departure_id(rt)}/report?format=pdf", "aud")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    customers_part, documents_part = text.split("Documents (", 1)
    row = " ".join(customers_part.split("Customers (", 1)[1].split("Nordlicht Handel", 1)[1].split()[:4])
    assert row == "Key account 1 1", row  # segment, read, looked up
    assert "Nordlicht Handel" not in documents_part


def _departure_id(rt: Any) -> int:
    with rt.db.session() as session:
        return session.scalar(select(Departure.id))
