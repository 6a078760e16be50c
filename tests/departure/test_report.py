"""The departure report as evidence: built from the audit log, written as CSV and PDF (opened again with
pypdf), produced from the command line, and audited every time it is produced."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pypdf
import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.departure.conftest import HOME, OFFICE, days_from_today, run_cli
from vault import policy
from vault.core.context import operator_name
from vault.core.errors import ServiceError
from vault.models import Alert, AuditEvent, Customer, CustomerCoOwner, utcnow
from vault.services import customers, departures, managers, pdf_layout, pool, report


@pytest.fixture
def story(rt, company) -> dict[str, int]:
    """Sam owns two customers, compiles a file, borrows and reads others; gives notice to Sue."""
    own = company.customer("=HYPERLINK(\"http://evil\") Trading", "vip")
    other = company.customer("Müller & Söhne <GmbH>", owner="tom")
    untouched = company.customer("Never Seen Ltd", owner="tom")
    compiled = company.document(own, grade=1, title="Sam's visit notes", compiler="sam")
    graded = company.document(other, grade=2, title="Price list 2027")
    plain = company.document(other, grade=1, title="Contacts")
    company.document(untouched, grade=1, title="Untouched file")
    company.loan(graded)
    company.view(graded, ctx=OFFICE, place="Head office")
    company.view(plain, ctx=HOME, place="Kitchen table")
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "sam"), last_day=days_from_today(7),
                                   successor=company.user(session, "sue"), ctx=OFFICE)
    return {"own": own, "other": other, "untouched": untouched, "compiled": compiled, "graded": graded,
            "plain": plain}


def _produce(rt, company, fmt: str, actor: str | None = "aud", days: int | None = None) -> report.Report:
    with rt.db.session() as session:
        return report.produce(rt, session, company.user(session, actor) if actor else None,
                              company.user(session, "sam"), fmt=fmt, lookback_days=days, ctx=OFFICE)


def test_the_report_lists_what_the_audit_log_says_was_touched(rt, company, story):
    data = _produce(rt, company, "html")
    assert {c.customer_id for c in data.customers} == {story["own"], story["other"]}
    lines = {c.customer_id: c for c in data.customers}
    assert lines[story["own"]].owned and lines[story["own"]].handover_to == "Sue"
    assert lines[story["own"]].handover_state == "awaiting confirmation"
    assert not lines[story["other"]].owned
    documents = {d.document_id: d for d in data.documents}
    assert documents[story["compiled"]].compiled == 1
    graded = documents[story["graded"]]
    assert (graded.borrowed, graded.viewed, graded.refused) == (1, 1, 0)
    assert graded.places == ["Head office (10.1.2.3)"] and "Head office" in graded.declared_places
    assert graded.reasons == ["Prepare the quarterly visit to the customer"]
    assert documents[story["plain"]].places == ["203.0.113.9"]
    assert documents[story["plain"]].declared_places == ["Kitchen table"]
    assert story["untouched"] not in {d.customer_id for d in data.documents}
    assert [loan.status for loan in data.loans] == ["active"]
    assert {a.rule for a in data.alerts} >= {"notice"}
    # the audit record of its production names the person and the chain head it was built on
    (event,) = company.events("departure:report")
    assert (event.actor_name, event.subject_user_id, event.seq) == ("aud", company.ids["sam"], data.audit_seq)
    assert json.loads(event.detail)["audit_head_seq"] == data.audit_head_seq == event.seq - 1


def test_the_reports_record_names_the_customers_of_the_alerts_it_shows(rt, company, story):
    """An alert the report shows names customers in its evidence (a sweep, reads outside the book) that the
    person may never have opened a file of: "who was shown this customer" must find the report's reader."""
    stranger = company.customer("Stranger Holdings", owner="tom")
    with rt.db.session() as session:
        session.add(Alert(user_id=company.ids["sam"], rule="outside_book", window_key="d:test", severity="high",
                          summary="Sam, on notice, read or looked up 1 customer outside their own book.",
                          evidence_json=json.dumps({"customers": [story["untouched"]]})))
        # An alert about someone else is not in Sam's report, nor are its customers.
        session.add(Alert(user_id=company.ids["tom"], rule="outside_book", window_key="d:test", severity="high",
                          summary="x", evidence_json=json.dumps({"customers": [stranger]})))
    data = _produce(rt, company, "csv")
    assert story["untouched"] in {c for a in data.alerts for c in a.evidence.get("customers", [])}
    assert story["untouched"] not in {c.customer_id for c in data.customers}  # named by the alert alone
    (event,) = company.events("departure:report")
    named = json.loads(event.detail)["customer_ids"]
    assert story["untouched"] in named and stranger not in named
    assert {story["own"], story["other"]} <= set(named)


@pytest.fixture
def shared_and_alerted(rt, company) -> dict[str, int]:
    """Before the notice Sam became a co-owner of Tom's customer and never opened it; a probing alert of Sam's
    names a file of another of Tom's customers that Sam never viewed (its evidence, not a record of a view).
    Tests ask for it before `story`, which gives the notice: nobody on notice becomes a co-owner."""
    shared = company.customer("Shared Book Ltd", owner="tom")
    elsewhere = company.customer("Elsewhere Trading", owner="tom")
    probed = company.document(elsewhere, grade=2, title="Probed price list")
    with rt.db.session() as session:
        customers.add_co_owner(rt, session, company.user(session, "ann"), session.get(Customer, shared),
                               company.user(session, "sam"), ctx=OFFICE)
        alert = Alert(user_id=company.ids["sam"], rule="probing", window_key="d:test", severity="high",
                      summary="Sam was refused 3 files in a row.", evidence_json=json.dumps({"documents": [probed]}))
        session.add(alert)
        session.flush()
        alert_id = alert.id
    return {"shared": shared, "elsewhere": elsewhere, "probed": probed, "alert": alert_id}


def test_the_report_lists_co_owned_customers_and_the_files_its_alerts_name(rt, company, shared_and_alerted, story):
    """A customer Sam co-owns but never touched, and a file named only in an alert's evidence, were missing
    from the report and from its record: the company hands every shared relationship over, and an alert's
    reader must see which files it is about. Both are listed now (the file with the alert naming it and no
    act of Sam's; its customer named beside it, not listed as Sam's), on the page, in the CSV and the PDF,
    and the report's record names them."""
    ids = shared_and_alerted
    data = _produce(rt, company, "csv")
    lines = {c.customer_id: c for c in data.customers}
    assert (lines[ids["shared"]].owned, lines[ids["shared"]].co_owned, lines[ids["shared"]].events) == (False, True, 0)
    assert not lines[story["own"]].co_owned and not lines[story["other"]].co_owned
    assert ids["elsewhere"] not in lines  # named by the alert's file alone
    probed = {d.document_id: d for d in data.documents}[ids["probed"]]
    assert (probed.alerts, probed.events, probed.delivered, probed.customer_id) == ([ids["alert"]], 0, 0,
                                                                                     ids["elsewhere"])
    assert data.customer_name(ids["elsewhere"]) == "Elsewhere Trading"
    (event,) = company.events("departure:report")
    detail = json.loads(event.detail)
    assert {ids["shared"], ids["elsewhere"], story["own"], story["other"]} <= set(detail["customer_ids"])
    assert {ids["probed"], story["graded"], story["plain"], story["compiled"]} <= set(detail["document_ids"])
    assert story["untouched"] not in detail["customer_ids"]  # neither Sam's, nor touched, nor named

    rows = list(csv.DictReader(io.StringIO(report.csv_bytes(data).decode("utf-8-sig"))))
    shared_row = next(r for r in rows if r["kind"] == "customer" and r["customer_id"] == str(ids["shared"]))
    assert (shared_row["owned"], shared_row["co_owned"]) == ("no", "yes")
    probed_row = next(r for r in rows if r["kind"] == "document" and r["document_id"] == str(ids["probed"]))
    assert (probed_row["named_by_alerts"], probed_row["viewed"], probed_row["customer"]) == (
        str(ids["alert"]), "0", "Elsewhere Trading")

    text = " ".join(" ".join(page.extract_text() for page in
                             pypdf.PdfReader(io.BytesIO(report.pdf_bytes(data))).pages).split())
    assert "Shared Book Ltd" in text and "co-owner" in text
    assert f"Probed price list (named by alert #{ids['alert']})" in text and "Elsewhere Trading" in text


def test_the_report_page_shows_them_and_records_them(app, rt, company, shared_and_alerted, story):
    ids = shared_and_alerted
    with rt.db.session() as session:
        departure_id = departures.departure_of(session, company.user(session, "sam")).id
    auditor = app.test_client()
    login(auditor, "aud")
    page = auditor.get(f"/departures/{departure_id}/report")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Shared Book Ltd" in html and "co-owner" in html
    assert "Probed price list" in html and f"named by alert #{ids['alert']}" in html
    (event,) = company.events("departure:report")
    detail = json.loads(event.detail)
    assert detail["format"] == "html"
    assert {ids["shared"], ids["elsewhere"]} <= set(detail["customer_ids"])
    assert ids["probed"] in detail["document_ids"]


def test_a_co_ownership_the_last_day_ended_stays_in_the_report(rt, company, shared_and_alerted, story):
    """The last day takes the leaver off every customer they co-own; a report made after it still lists
    them, from the record of that step."""
    later = utcnow() + timedelta(days=9)
    with rt.db.session() as session:
        assert departures.run_due(rt, session, now=later)
    with rt.db.session() as session:
        assert session.scalars(select(CustomerCoOwner).where(CustomerCoOwner.user_id == company.ids["sam"])).all() == []
        data = report.build_report(rt, session, company.user(session, "sam"), now=later)
    shared = {c.customer_id: c for c in data.customers}[shared_and_alerted["shared"]]
    assert (shared.owned, shared.co_owned) == (False, True)


def test_a_co_ownership_ended_during_the_notice_stays_in_the_report(app, rt, company, users, shared_and_alerted,
                                                                    story):
    """An approver took Sam off a customer Sam co-owned (never opened) while the notice ran: before, the report
    knew only the co-ownerships of now and those the last day ended, so that relationship vanished from the
    report, its CSV, its PDF and its record. It is read back from the record of the removal
    (`customer:co_owner_remove`), flagged as co-owned; a refused attempt to make Sam a co-owner is not."""
    ids = shared_and_alerted
    approver = {"Authorization": f"Bearer {users.token('ann')}"}
    removed = app.test_client().post(f"/api/v1/customers/{ids['shared']}/co-owners/remove", headers=approver,
                                     json={"user": "sam"})
    assert removed.status_code == 200, removed.get_json()
    # nobody on notice becomes a co-owner: refused, and the refusal names Sam and the customer
    refused = app.test_client().post(f"/api/v1/customers/{story['untouched']}/co-owners", headers=approver,
                                     json={"user": "sam"})
    assert (refused.status_code, refused.get_json()["code"]) == (403, "person_departing")
    assert [e.subject_user_id for e in company.events(outcome="denied") if e.customer_id == story["untouched"]] == [
        company.ids["sam"]]
    with rt.db.session() as session:
        assert session.get(Customer, ids["shared"]).co_owner_ids == set()
    data = _produce(rt, company, "csv")
    lines = {c.customer_id: c for c in data.customers}
    assert (lines[ids["shared"]].owned, lines[ids["shared"]].co_owned, lines[ids["shared"]].events) == (False, True, 0)
    assert story["untouched"] not in lines
    (event,) = company.events("departure:report")
    named = json.loads(event.detail)["customer_ids"]
    assert ids["shared"] in named and story["untouched"] not in named
    rows = list(csv.DictReader(io.StringIO(report.csv_bytes(data).decode("utf-8-sig"))))
    shared_row = next(r for r in rows if r["kind"] == "customer" and r["customer_id"] == str(ids["shared"]))
    assert (shared_row["owned"], shared_row["co_owned"]) == ("no", "yes")
    text = " ".join(" ".join(page.extract_text() for page in
                             pypdf.PdfReader(io.BytesIO(report.pdf_bytes(data))).pages).split())
    assert "Shared Book Ltd" in text and "co-owner" in text

    with rt.db.session() as session:
        departure_id = departures.departure_of(session, company.user(session, "sam")).id
    auditor = app.test_client()
    login(auditor, "aud")
    html = auditor.get(f"/departures/{departure_id}/report").get_data(as_text=True)
    assert "Shared Book Ltd" in html and "co-owner" in html
    for answer in (auditor.get(f"/departures/{departure_id}/report.csv"),
                   app.test_client().get(f"/api/v1/departures/{departure_id}/report",
                                         headers={"Authorization": f"Bearer {users.token('aud')}"})):
        assert answer.status_code == 200
        row = next(r for r in csv.DictReader(io.StringIO(answer.get_data().decode("utf-8-sig")))
                   if r["kind"] == "customer" and r["customer_id"] == str(ids["shared"]))
        assert (row["customer"], row["owned"], row["co_owned"]) == ("Shared Book Ltd", "no", "yes")


def test_a_co_ownership_ended_before_the_window_is_not_in_the_report(rt, company, shared_and_alerted):
    """The control: without a notice the window counts back from the report's making; a co-ownership ended
    inside it is listed, one ended before it (seen from three days ahead with a one-day window) is not."""
    ids = shared_and_alerted
    with rt.db.session() as session:
        customers.remove_co_owner(rt, session, company.user(session, "ann"), session.get(Customer, ids["shared"]),
                                  company.user(session, "sam"), ctx=OFFICE)
    with rt.db.session() as session:
        now = report.build_report(rt, session, company.user(session, "sam"), lookback_days=1)
        later = report.build_report(rt, session, company.user(session, "sam"), lookback_days=1,
                                    now=utcnow() + timedelta(days=3))
    assert {c.customer_id: c.co_owned for c in now.customers}[ids["shared"]] is True
    assert ids["shared"] not in {c.customer_id for c in later.customers}


@pytest.fixture
def reassigned(rt, company) -> dict[str, int]:
    """Before the notice an approver gave two of Sam's customers, never opened by Sam, to Tom (and one of them
    back to Sam); Sam's manager released a third to the pool; Sam tried to take Tom's customer and was refused.
    Tests ask for it before `story`, which gives the notice."""
    former = company.customer("Former Book Ltd")
    pooled = company.customer("Pooled Book Ltd")
    regained = company.customer("Regained Book Ltd")
    toms = company.customer("Tom's Own Ltd", owner="tom")
    with rt.db.session() as session:
        ann = company.user(session, "ann")
        for customer_id in (former, regained):
            customers.set_owner(rt, session, ann, session.get(Customer, customer_id), company.user(session, "tom"),
                                ctx=OFFICE, reason="Rebalancing the book")
        customers.set_owner(rt, session, ann, session.get(Customer, regained), company.user(session, "sam"),
                            ctx=OFFICE, reason="Back to Sam")
        managers.set_manager(rt, session, company.user(session, "sam"), company.user(session, "abe"), actor=None)
        pool.release(rt, session, company.user(session, "abe"), pooled, reason="Nobody works it", ctx=OFFICE)
        # refused: Sam cannot take a customer for himself, so the refusal names nobody's ownership ending
        with pytest.raises(policy.Denied):
            customers.set_owner(rt, session, company.user(session, "sam"), session.get(Customer, toms),
                                company.user(session, "sam"), ctx=OFFICE)
    return {"former": former, "pooled": pooled, "regained": regained, "toms": toms}


def test_a_customer_reassigned_before_the_notice_stays_in_the_report(app, rt, company, users, reassigned, story):
    """A customer Sam owned and never opened was given to Tom before the notice: before, the report listed it
    only had Sam touched it, so the page, the CSV, the PDF, the API and the report's record missed a
    relationship that was Sam's in the very window the report looks at. It is read back from the record of
    the change of owner (`customer:owner`, "from" Sam) and from the return to the pool, flagged as formerly
    owned with when the ownership ended; one Sam owns again is owned, and Tom's is not listed."""
    ids = reassigned
    with rt.db.session() as session:
        ended = {e.customer_id: e.ts for e in session.scalars(select(AuditEvent).where(
            AuditEvent.action.in_(("customer:owner", "pool:release")), AuditEvent.outcome == "allowed"))}
    data = _produce(rt, company, "csv")
    lines = {c.customer_id: c for c in data.customers}
    for key in ("former", "pooled"):
        line = lines[ids[key]]
        assert (line.owned, line.co_owned, line.formerly_owned, line.owned_until, line.events) == (
            False, False, True, ended[ids[key]], 0), key
    assert (lines[ids["regained"]].owned, lines[ids["regained"]].formerly_owned) == (True, False)
    assert ids["toms"] not in lines
    assert not lines[story["own"]].formerly_owned and not lines[story["other"]].formerly_owned
    (event,) = company.events("departure:report")
    named = json.loads(event.detail)["customer_ids"]
    assert {ids["former"], ids["pooled"], ids["regained"]} <= set(named) and ids["toms"] not in named

    rows = list(csv.DictReader(io.StringIO(report.csv_bytes(data).decode("utf-8-sig"))))
    assert list(rows[0])[-2:] == ["formerly_owned", "owned_until"]  # appended: older readers keep their columns
    former_row = next(r for r in rows if r["kind"] == "customer" and r["customer_id"] == str(ids["former"]))
    assert (former_row["owned"], former_row["co_owned"], former_row["formerly_owned"], former_row["owned_until"]) == (
        "no", "no", "yes", ended[ids["former"]].isoformat(timespec="seconds"))
    own_row = next(r for r in rows if r["kind"] == "customer" and r["customer_id"] == str(story["own"]))
    assert (own_row["formerly_owned"], own_row["owned_until"]) == ("no", "")
    text = " ".join(" ".join(page.extract_text() for page in
                             pypdf.PdfReader(io.BytesIO(report.pdf_bytes(data))).pages).split())
    assert "Former Book Ltd" in text and "Pooled Book Ltd" in text and "formerly, until" in text
    assert "Tom's Own Ltd" not in text

    with rt.db.session() as session:
        departure_id = departures.departure_of(session, company.user(session, "sam")).id
    auditor = app.test_client()
    login(auditor, "aud")
    html = auditor.get(f"/departures/{departure_id}/report").get_data(as_text=True)
    assert "Former Book Ltd" in html and "formerly, until" in html and "Tom&#39;s Own Ltd" not in html
    answer = app.test_client().get(f"/api/v1/departures/{departure_id}/report",
                                   headers={"Authorization": f"Bearer {users.token('aud')}"})
    assert answer.status_code == 200
    row = next(r for r in csv.DictReader(io.StringIO(answer.get_data().decode("utf-8-sig")))
               if r["kind"] == "customer" and r["customer_id"] == str(ids["former"]))
    assert (row["customer"], row["owned"], row["formerly_owned"]) == ("Former Book Ltd", "no", "yes")


def test_an_ownership_ended_before_the_window_is_not_in_the_report(rt, company, reassigned):
    """The control: without a notice the window counts back from the report's making; an ownership ended inside
    it is listed, one ended before it (seen from three days ahead with a one-day window) is not."""
    ids = reassigned
    with rt.db.session() as session:
        now = report.build_report(rt, session, company.user(session, "sam"), lookback_days=1)
        later = report.build_report(rt, session, company.user(session, "sam"), lookback_days=1,
                                    now=utcnow() + timedelta(days=3))
    assert {c.customer_id: c.formerly_owned for c in now.customers}[ids["former"]] is True
    assert not {ids["former"], ids["pooled"]} & {c.customer_id for c in later.customers}


def test_the_departure_page_s_record_names_the_customers_of_the_loans_it_lists(app, rt, company, users, story,
                                                                              tmp_path):
    """The departure's page lists the leaver's loans beside the handover, each with its file's customer by
    name: Sam borrowed a file of Tom's customer, which Sam hands nobody. Before, the page's record named only
    the handover's customers, so "who was shown this customer" missed the page's readers. It names every
    customer the page shows now, with the loans; the JSON and the command line, which list the handover
    alone, name its customers."""
    with rt.db.session() as session:
        departure_id = departures.departure_of(session, company.user(session, "sam")).id
    (loan,) = company.events("loan:request", outcome="allowed")
    auditor = app.test_client()
    login(auditor, "aud")
    page = auditor.get(f"/departures/{departure_id}")
    assert page.status_code == 200
    assert "Price list 2027" in page.get_data(as_text=True) and "Müller &amp; Söhne" in page.get_data(as_text=True)
    (read,) = company.events("departure:report")
    assert (read.actor_name, read.outcome) == ("aud", "allowed")
    assert json.loads(read.detail) == {"format": "page", "departure_id": departure_id,
                                       "customers": sorted([story["own"], story["other"]]), "loans": [loan.loan_id]}
    mark = company.head()
    shown = app.test_client().get(f"/api/v1/departures/{departure_id}",
                                  headers={"Authorization": f"Bearer {users.token('aud')}"})
    assert shown.status_code == 200 and [c["customer_id"] for c in shown.get_json()["customers"]] == [story["own"]]
    assert run_cli(rt, tmp_path, "departure", "show", "sam").exit_code == 0
    assert [(e.actor_name, json.loads(e.detail)) for e in company.events("departure:report", after=mark)] == [
        ("aud", {"format": "json", "departure_id": departure_id, "customers": [story["own"]]}),
        (operator_name(), {"format": "cli", "departure_id": departure_id, "customers": [story["own"]]})]


def test_the_lookback_window_leaves_out_older_acts(rt, company, story):
    """Seen from three days ahead with a one-day window, the story's acts are older than the window:
    only the customers the person owned remain (the audit log is append-only, so time moves instead).
    Without a notice (withdrawn here) the window counts back from the report's making."""
    with rt.db.session() as session:
        sam = company.user(session, "sam")
        departures.withdraw(rt, session, None, departures.departure_of(session, sam),
                            reason="Sam accepted the counter-offer", ctx=OFFICE)
    with rt.db.session() as session:
        data = report.build_report(rt, session, company.user(session, "sam"), lookback_days=1,
                                   now=utcnow() + timedelta(days=3))
    assert data.documents == [] and data.loans == [] and data.events == 0
    assert [(c.customer_id, c.owned, c.events) for c in data.customers] == [(story["own"], True, 0)]


@pytest.mark.parametrize("days_after", [40, 400])
def test_the_window_reaches_back_from_the_notice_however_late_the_report(rt, company, story, days_after):
    """A thirty-day window, made forty days into the notice (or long after the person left): the window
    counted back from the day it was made, and the files Sam read and borrowed in the days before the
    notice, the customers they belong to and the loan, had dropped out of the report. They stay in it."""
    later = utcnow() + timedelta(days=days_after)
    with rt.db.session() as session:
        sam = company.user(session, "sam")
        began = departures.notice_began(rt.settings, departures.departure_of(session, sam))
        data = report.build_report(rt, session, sam, lookback_days=30, now=later)
    assert data.window_start == began - timedelta(days=30)
    assert {c.customer_id for c in data.customers} == {story["own"], story["other"]}
    documents = {d.document_id: d for d in data.documents}
    assert set(documents) == {story["compiled"], story["graded"], story["plain"]}
    assert (documents[story["graded"]].borrowed, documents[story["graded"]].viewed) == (1, 1)
    assert len(data.loans) == 1
    text = " ".join(" ".join(page.extract_text() for page in
                             pypdf.PdfReader(io.BytesIO(report.pdf_bytes(data))).pages).split())
    assert "Look-back window: 30 days before the notice, from" in text


def test_the_csv_cannot_run_formulas_in_a_spreadsheet(rt, company, story):
    data = _produce(rt, company, "csv")
    rows = list(csv.DictReader(io.StringIO(report.csv_bytes(data).decode("utf-8-sig"))))
    names = {r["customer"] for r in rows if r["kind"] == "customer"}
    assert "'=HYPERLINK(\"http://evil\") Trading" in names and "Müller & Söhne <GmbH>" in names
    assert all(not r["customer"].startswith(("=", "+", "-", "@")) for r in rows)
    assert {r["kind"] for r in rows} == {"customer", "document", "loan", "alert"}


def test_the_pdf_opens_and_says_what_the_report_says(rt, company, story):
    data = _produce(rt, company, "pdf")
    reader = pypdf.PdfReader(io.BytesIO(report.pdf_bytes(data)))
    # Lines joined: a cell's text wraps where its column ends (DejaVu Sans is wider than Helvetica was).
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Departure report: Sam (sam)" in text
    for expected in ("Müller & Söhne <GmbH>", "=HYPERLINK(\"http://evil\") Trading", "Price list 2027",
                     "Sam's visit notes", "Kitchen table", "203.0.113.9", "Prepare the quarterly visit",
                     f"audit event #{data.audit_seq}", f"#{data.audit_head_seq}", "Successor: Sue"):
        assert expected in text, expected
    assert "Never Seen Ltd" not in text
    assert reader.metadata.title == "Departure report: Sam (sam)"


HEADERS = ("Customer", "Segment", "Owned", "Handed to", "Handover", "Looked up", "Records", "Document", "Comp.",
           "Loans", "Views", "Downl.", "Deliv.", "Refused", "Approvals", "Requested", "Severity", "Last seen")


def test_the_pdf_headers_keep_their_words_whole_and_pages_say_x_of_y(rt, company, story):
    data = _produce(rt, company, "pdf")
    # Enough loans to run over several pages, so "of y" is tested with y > 1.
    data.loans = data.loans * 40
    reader = pypdf.PdfReader(io.BytesIO(report.pdf_bytes(data)))
    total = len(reader.pages)
    assert total >= 2
    words: set[str] = set()
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert f"page {number} of {total}" in text, (number, text[-200:])
        words |= {word for line in text.splitlines() for word in line.split()}
    for header in HEADERS:
        for word in header.split():
            assert word in words, f"header word {word!r} is split or missing"


def test_fitted_widths_keep_the_total_and_fit_every_header_word():
    headers = ["Customer", "Gr.", "Refused", "Looked up", "Reasons"]
    widths = [80.0, 10.0, 20.0, 20.0, 150.0]
    fitted = pdf_layout.fit_widths(headers, widths, "Helvetica-Bold", 7.5)
    assert sum(fitted) == pytest.approx(sum(widths))
    assert fitted[0] == widths[0]  # the name column had less to spare than the free-text one
    for header, width in zip(headers, fitted, strict=True):
        assert width >= pdf_layout.minimum_width(header, "Helvetica-Bold", 7.5) - 1e-6, header
    assert fitted[4] < widths[4]  # the room came from the wide column
    # Wide enough already: unchanged. No room anywhere: the minimums win over splitting a word.
    assert pdf_layout.fit_widths(["A", "B"], [50.0, 50.0], "Helvetica-Bold", 7.5) == [50.0, 50.0]
    # Free room on the page is used before any column gives.
    grown = pdf_layout.fit_widths(headers, widths, "Helvetica-Bold", 7.5, total=400.0)
    assert grown[0] == widths[0] and grown[4] == widths[4] and sum(grown) <= 400.0
    squeezed = pdf_layout.fit_widths(["Refused", "Approvals"], [5.0, 5.0], "Helvetica-Bold", 7.5)
    assert squeezed == [pdf_layout.minimum_width("Refused", "Helvetica-Bold", 7.5),
                        pdf_layout.minimum_width("Approvals", "Helvetica-Bold", 7.5)]


def test_the_report_from_the_command_line(rt, company, story, tmp_path):
    out = tmp_path / "sam.pdf"
    result = run_cli(rt, tmp_path, "departure", "report", "sam", "--format", "pdf", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(out).pages)
    assert "Price list 2027" in text and "Generated by: command line" in text
    csv_out = tmp_path / "sam.csv"
    result = run_cli(rt, tmp_path, "departure", "report", "sam", "--format", "csv", "--out", str(csv_out),
                     "--lookback-days", "30")
    assert result.exit_code == 0, result.output
    assert "Price list 2027" in csv_out.read_text(encoding="utf-8-sig")
    # Finding 14: a report names customers and files: the owner's alone, whatever the umask.
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in (out, csv_out))
    events = company.events("departure:report")
    assert [(e.actor_name, json.loads(e.detail)["format"], json.loads(e.detail)["lookback_days"])
            for e in events] == [(operator_name(), "pdf", 180), (operator_name(), "csv", 30)]
    # a file that cannot be written: no report, no audit record of one
    result = run_cli(rt, tmp_path, "departure", "report", "sam", "--format", "csv", "--out",
                     str(tmp_path / "missing" / "dir" / "x.csv"))
    assert result.exit_code != 0 and "cannot write" in result.output
    assert len(company.events("departure:report")) == 2


def test_producing_the_report_is_refused_to_others_and_to_the_person(rt, company, users, story):
    from vault.models import Role

    users.make("audrey", Role.AUDITOR, Role.BORROWER)
    for actor, code in (("sue", "not_permitted"), ("ann", "not_permitted"), ("kim", "not_permitted")):
        with pytest.raises(policy.Denied) as refused:
            _produce(rt, company, "pdf", actor)
        assert refused.value.decision.code == code
    with rt.db.session() as session, pytest.raises(policy.Denied) as own:
        report.produce(rt, session, company.user(session, "audrey"), company.user(session, "audrey"), fmt="csv",
                       ctx=OFFICE)
    assert own.value.decision.code == "own_departure"
    with pytest.raises(ServiceError):
        _produce(rt, company, "docx")
    with pytest.raises(ServiceError):
        _produce(rt, company, "csv", days=0)
    with rt.db.session() as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "departure:report",
                                                        AuditEvent.outcome == "allowed")).all() == []


def test_an_empty_section_of_the_report_page_says_none_instead_of_bare_headers(app, rt, company):
    # Was: a section with nothing to list showed its table's headers alone (fifteen of them for the files),
    # which read as a table that failed to load.
    with rt.db.session() as session:
        departure = departures.start_departure(rt, session, None, company.user(session, "sam"),
                                               last_day=days_from_today(7), successor=company.user(session, "sue"),
                                               ctx=OFFICE)
        departure_id = departure.id
    auditor = app.test_client()
    login(auditor, "aud")
    page = auditor.get(f"/departures/{departure_id}/report")
    assert page.status_code == 200
    html = " ".join(page.get_data(as_text=True).split())
    for section in ("Documents (0)", "Loans (0)"):
        assert f'{section}</h2> <p class="muted">None.</p>' in html
    assert "<th>Time open</th>" not in html and "<th>Kind</th>" not in html


def test_a_customer_handed_over_by_a_withdrawn_notice_stays_in_the_next_report(rt, company):
    """A first notice handed "Handed Book Ltd" to Sue, who gave it to Tom; the notice was withdrawn (what
    Sue still held went back to Sam, this one did not), then Sam gave notice again. The second report missed
    it: the ownership ended by the handover (`customer:handover`, "from_user_id" Sam) was not read back. It
    is listed as formerly owned until the handover; the customer the withdrawal gave back is owned, and a
    customer handed over to Sam (the withdrawal's own record, "to" Sam) is not called formerly his."""
    handed = company.customer("Handed Book Ltd")
    kept = company.customer("Kept Book Ltd")
    with rt.db.session() as session:
        first = departures.start_departure(rt, session, None, company.user(session, "sam"),
                                           last_day=days_from_today(7), successor=company.user(session, "sue"),
                                           ctx=OFFICE).id
    with rt.db.session() as session:
        customers.set_owner(rt, session, company.user(session, "ann"), session.get(Customer, handed),
                            company.user(session, "tom"), ctx=OFFICE, reason="Tom knows them better")
        departures.withdraw(rt, session, company.user(session, "adm"), departures.get_departure(session, first),
                            reason="Sam accepted the counter-offer", ctx=OFFICE)
    with rt.db.session() as session:
        handed_at = session.scalar(select(AuditEvent.ts).where(
            AuditEvent.action == "customer:handover", AuditEvent.customer_id == handed))
        assert session.get(Customer, handed).owner_id == company.ids["tom"]
        assert session.get(Customer, kept).owner_id == company.ids["sam"]
        departures.start_departure(rt, session, None, company.user(session, "sam"), last_day=days_from_today(7),
                                   successor=None, ctx=OFFICE)
    lines = {c.customer_id: c for c in _produce(rt, company, "csv").customers}
    assert handed in lines, "the customer the first notice handed over is missing"
    assert (lines[handed].owned, lines[handed].formerly_owned, lines[handed].owned_until) == (False, True, handed_at)
    assert (lines[kept].owned, lines[kept].formerly_owned) == (True, False)
