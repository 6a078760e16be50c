"""Who is told what: each event's mail reaches the right people over a real SMTP server, with the right
subject and an absolute link; the people it must not reach get nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.mail.conftest import BASE_URL, SECURITY, give_email
from tests.mail.helpers import CTX, decide, make_document, outbox, request, send
from vault import mail
from vault.alerts import Finding, raise_alert
from vault.mail import outbox as outbox_module
from vault.models import Departure, MailStatus, Severity, User, utcnow
from vault.services import departures


def _addresses(*names: str) -> set[str]:
    return {f"{name}@example.com" for name in names}


def test_loan_request_reaches_the_approvers_and_the_decision_the_borrower(rt, cast, smtp) -> None:
    doc = make_document(rt, compiler_id=cast["carl"], grade=2, title="Pricing 2027")
    loan_id = request(rt, cast["ann"], doc)
    assert send(rt).sent == 3
    # Every approver but the borrower and the file's compiler; nobody else.
    assert {r.recipients[0] for r in smtp.received} == _addresses("paula", "quinn", "abby")
    for received in smtp.received:
        assert received.message["Subject"] == 'Loan request for "Pricing 2027" by Ann'
        assert received.message["From"] == "vault@example.com"
        assert f"{BASE_URL}/loans/{loan_id}" in received.text
        assert f'href="{BASE_URL}/loans/{loan_id}"' in received.html
        assert received.message["Message-ID"].startswith("<vault-mail-")

    smtp.received.clear()
    decide(rt, cast["paula"], loan_id, "approve")
    assert send(rt).sent == 1
    [decision] = smtp.received
    assert decision.recipients == ["ann@example.com"]
    assert decision.message["Subject"] == 'Your request for "Pricing 2027" is approved'
    assert f"{BASE_URL}/loans/{loan_id}" in decision.text


def test_a_rejection_tells_the_borrower_why(rt, cast, smtp) -> None:
    doc = make_document(rt, compiler_id=cast["carl"], grade=2)
    loan_id = request(rt, cast["abby"], doc)  # abby approves others' loans, never her own
    assert {row.recipient for row in outbox(rt)} == _addresses("paula", "quinn")
    decide(rt, cast["quinn"], loan_id, "reject", comment="Not needed for a complaint")
    send(rt)
    [rejection] = smtp.to("abby@example.com")
    assert "is rejected" in rejection.message["Subject"]
    assert "Not needed for a complaint" in rejection.text and "Quinn" in rejection.text


def test_an_approved_grade_3_loan_asks_the_files_custodian_for_release(rt, cast, smtp) -> None:
    doc = make_document(rt, compiler_id=cast["carl"], grade=3, custodian_id=cast["cid"])
    loan_id = request(rt, cast["ann"], doc)
    decide(rt, cast["paula"], loan_id, "approve")
    send(rt)
    [release] = smtp.to("cid@example.com")
    assert release.message["Subject"].startswith("Release needed:")
    assert f"{BASE_URL}/loans/{loan_id}" in release.text
    assert smtp.to("cora@example.com") == []  # the file names its custodian
    [approved] = smtp.to("ann@example.com")
    assert "custodian must now release" in approved.text


def test_one_approval_of_two_decides_nothing(rt, cast, smtp, monkeypatch) -> None:
    doc = make_document(rt, compiler_id=cast["carl"], grade=2)
    loan_id = request(rt, cast["ann"], doc)
    from vault.models import Loan

    with rt.db.session() as session:
        session.get(Loan, loan_id).approvals_required = 2
    decide(rt, cast["paula"], loan_id, "approve")
    assert [row for row in outbox(rt) if row.kind == "loan_decided"] == []
    decide(rt, cast["quinn"], loan_id, "approve")
    assert [row.recipient for row in outbox(rt) if row.kind == "loan_decided"] == ["ann@example.com"]


def test_people_without_an_address_or_access_get_nothing(rt, cast, smtp) -> None:
    give_email(rt, cast["quinn"], None)
    with rt.db.session() as session:
        session.get(User, cast["abby"]).disabled = True
    request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2))
    assert {row.recipient for row in outbox(rt)} == _addresses("paula")


def test_a_security_alert_reaches_the_contacts_once_per_severity(rt, cast, smtp) -> None:
    finding = Finding("probing", Severity.MEDIUM, "w1", "Ten refused attempts", {})
    with rt.db.session() as session:
        alert_id = raise_alert(rt, session, session.get(User, cast["ann"]), finding)
    with rt.db.session() as session:  # same window, same severity: evidence added, no new mail
        raise_alert(rt, session, session.get(User, cast["ann"]), finding)
    send(rt)
    assert {r.recipients[0] for r in smtp.received} == set(SECURITY)
    assert all(f"{BASE_URL}/alerts/{alert_id}" in r.text for r in smtp.received)
    assert smtp.received[0].message["Subject"] == "[MEDIUM] Security alert: Repeated refused attempts (Ann)"
    with rt.db.session() as session:
        raise_alert(rt, session, session.get(User, cast["ann"]),
                    Finding("probing", Severity.HIGH, "w1", "Forty refused attempts", {}))
    send(rt)
    assert len(smtp.received) == 4 and smtp.received[-1].message["Subject"].startswith("[HIGH]")


def test_a_departure_hands_customers_to_the_successor_and_reports_its_steps(rt, cast, smtp, users) -> None:
    from vault.models import Role

    sam = users.make("sam", Role.COMPILER, Role.BORROWER).id
    give_email(rt, sam, "sam@example.com")
    make_document(rt, compiler_id=sam, grade=2)  # sam owns the customer
    with rt.db.session() as session:
        departure = departures.start_departure(
            rt, session, session.get(User, cast["adam"]), session.get(User, sam),
            last_day=utcnow().date() + timedelta(days=7), successor=session.get(User, cast["ann"]), ctx=CTX)
        departure_id = departure.id
    send(rt)
    [handover] = smtp.to("ann@example.com")
    assert "is handed over to you from Sam" in handover.message["Subject"]
    assert f"{BASE_URL}/departures/handover" in handover.text
    assert smtp.to("adam@example.com") == []  # adam started it himself: no mail about his own act
    assert smtp.to("sam@example.com") == []
    assert {r.recipients[0] for r in smtp.received} == _addresses("ann") | set(SECURITY)  # the notice alert

    with rt.db.session() as session:  # the last-day steps, run by cron: the starter is told
        departures.offboard(rt, session, session.get(Departure, departure_id), ctx=CTX)
    send(rt)
    [step] = smtp.to("adam@example.com")
    assert step.message["Subject"] == "Departure of Sam: access ended"
    assert f"{BASE_URL}/departures/{departure_id}" in step.text


def test_a_rolled_back_act_queues_nothing(rt, cast) -> None:
    doc = make_document(rt, compiler_id=cast["carl"], grade=2)
    with pytest.raises(RuntimeError), rt.db.session() as session:
        from vault.models import Document
        from vault.services import loans

        loans.request_loan(rt, session, session.get(User, cast["ann"]), session.get(Document, doc),
                           reason="Prepare the Tuesday visit to the customer", category="complaint",
                           place="Office", days=3, ctx=CTX)
        assert len(session.info[outbox_module.NEW_IDS]) == 3
        raise RuntimeError("the act fails after the mail was written")
    assert outbox(rt) == []


def test_a_mail_that_cannot_be_written_does_not_stop_the_act(rt, cast, monkeypatch) -> None:
    # A fault no real part produces on demand: a template that breaks while rendering.
    def broken(*args, **kwargs):
        raise ValueError("template bug")

    monkeypatch.setattr(outbox_module, "render", broken)
    loan_id = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2))
    assert loan_id and outbox(rt) == []


def test_bare_addresses_are_checked(rt) -> None:
    with rt.db.session() as session:
        rows = mail.enqueue(session, mail.Kind.TEST, ["ops@example.com", "not an address", "OPS@example.com"],
                            "test", {})
    assert [row.recipient for row in rows] == ["ops@example.com"]
    assert [row.status for row in outbox(rt)] == [MailStatus.QUEUED]


def test_titles_are_escaped_in_html_and_kept_in_one_subject_line(rt, cast, smtp) -> None:
    give_email(rt, cast["paula"], "paula@example.com", locale="de")  # no German catalogue yet: English
    title = '<b onclick="x()">Q4</b> & co\nBcc: evil@example.com'
    loan_id = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title=title))
    send(rt)
    [received] = smtp.to("paula@example.com")
    assert received.recipients == ["paula@example.com"] and received.message["Bcc"] is None
    subject = " ".join(str(received.message["Subject"]).split())  # as a reader unfolds a long header
    assert subject.startswith("Loan request for") and subject.endswith("by Ann")
    assert "<b onclick" not in received.html and "&lt;b onclick=" in received.html
    assert "<b onclick" in received.text  # plain text is not HTML: shown as typed
    assert f"{BASE_URL}/loans/{loan_id}" in received.text
