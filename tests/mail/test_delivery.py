"""Delivery: preferences and digests, a server that is down and comes back, giving up, two senders at
once, and the after-commit send from a request. Each against a real SMTP server and database."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.loans.helpers import Browser
from tests.mail.helpers import make_document, outbox, request, send
from vault import mail
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.mail import preferences, send_digests, send_pending, transport_for
from vault.mail.sender import BACKGROUND, MAX_ATTEMPTS, MAX_DELAY, backoff
from vault.mail.status import outbox_status
from vault.models import MailOutbox, MailStatus, User, utcnow


def _prefer(rt, user_id: int, kind: str, mode: str) -> None:
    with rt.db.session() as session:
        preferences.set_modes(rt, session, session.get(User, user_id), {kind: mode}, ctx=AccessContext.cli())


def test_off_sends_nothing_and_digest_bundles_a_day_into_one_mail(rt, cast, smtp) -> None:
    _prefer(rt, cast["paula"], "loan_requested", "off")
    _prefer(rt, cast["quinn"], "loan_requested", "digest")
    first = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title="First file"))
    second = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title="Second file"))
    now = utcnow()
    assert send(rt, now).sent == 2  # abby, twice: immediate is the default
    assert {r.recipients[0] for r in smtp.received} == {"abby@example.com"}
    held = [row for row in outbox(rt) if row.recipient == "quinn@example.com"]
    assert [row.status for row in held] == [MailStatus.DIGEST] * 2
    assert not any(row.recipient == "paula@example.com" for row in outbox(rt))

    assert send_digests(rt.db, now) == 0  # the day is not over yet
    tomorrow = now + timedelta(days=1)
    assert send_digests(rt.db, tomorrow) == 1
    assert send_digests(rt.db, tomorrow) == 0  # already bundled
    assert send(rt, tomorrow).sent == 1
    [digest] = smtp.to("quinn@example.com")
    assert "2 notifications" in digest.message["Subject"]
    assert "First file" in digest.text and "Second file" in digest.text
    assert f"/loans/{first}" in digest.text and f"/loans/{second}" in digest.html
    parts = [row for row in outbox(rt) if row.recipient_user_id == cast["quinn"] and row.kind == "loan_requested"]
    assert {row.status for row in parts} == {MailStatus.DIGESTED} and len({row.digest_id for row in parts}) == 1


def test_security_alerts_cannot_be_turned_off(rt, cast) -> None:
    with pytest.raises(ServiceError, match="cannot be turned off"):
        _prefer(rt, cast["adam"], "security_alert", "off")
    _prefer(rt, cast["adam"], "security_alert", "digest")  # bundling is allowed
    with pytest.raises(ServiceError):
        _prefer(rt, cast["adam"], "no_such_kind", "off")
    with pytest.raises(ServiceError):
        _prefer(rt, cast["adam"], "loan_requested", "hourly")


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    import random

    rng = random.Random(7)
    for attempts, minutes in ((1, 1), (2, 2), (3, 4), (6, 32)):
        delay = backoff(attempts, rng)
        assert timedelta(minutes=minutes) * 0.75 <= delay <= timedelta(minutes=minutes) * 1.25
    assert backoff(40, rng) <= MAX_DELAY


def test_an_act_while_the_server_is_down_is_mailed_once_it_is_back(rt, cast, smtp) -> None:
    smtp.stop()
    loan_id = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2))
    now = utcnow()
    result = send(rt, now)
    assert (result.sent, result.retrying, result.failed) == (0, 3, 0)
    rows = outbox(rt)
    assert {row.status for row in rows} == {MailStatus.QUEUED}
    assert all(row.attempts == 1 and row.next_attempt_at > now + timedelta(seconds=40) for row in rows)
    assert all("127.0.0.1" in row.last_error for row in rows)

    smtp.start()  # the same port again
    assert send(rt, now).claimed == 0  # not due yet: the back-off is respected
    assert smtp.received == []
    later = now + timedelta(minutes=2)
    assert send(rt, later).sent == 3
    assert send(rt, later + timedelta(days=2)).claimed == 0
    for name in ("paula", "quinn", "abby"):
        [received] = smtp.to(f"{name}@example.com")  # exactly once each
        assert f"/loans/{loan_id}" in received.text
    assert {row.status for row in outbox(rt)} == {MailStatus.SENT}


def test_a_server_that_stays_down_ends_in_failed_still_visible(rt, cast, smtp) -> None:
    smtp.stop()
    with rt.db.session() as session:
        mail.enqueue(session, mail.Kind.TEST, ["ops@example.com"], "test", {})
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = send(rt, now)
        assert result.claimed == 1, attempt
        now += MAX_DELAY * 1.25
    [row] = outbox(rt)
    assert (row.status, row.attempts) == (MailStatus.FAILED, MAX_ATTEMPTS)
    assert send(rt, now + timedelta(days=30)).claimed == 0
    with rt.db.session() as session:
        status = outbox_status(session, now)
    assert status.counts["failed"] == 1 and status.last_errors[0][0] == row.id


def test_a_refused_mailbox_fails_at_once(rt, smtp) -> None:
    smtp.refuse.add("gone@example.com")
    with rt.db.session() as session:
        mail.enqueue(session, mail.Kind.TEST, ["gone@example.com", "ops@example.com"], "test", {})
    result = send(rt)
    assert (result.sent, result.failed, result.retrying) == (1, 1, 0)
    failed = [row for row in outbox(rt) if row.status == MailStatus.FAILED]
    assert [row.recipient for row in failed] == ["gone@example.com"] and "550" in failed[0].last_error


def test_a_crashed_senders_claim_runs_out(rt, smtp) -> None:
    with rt.db.session() as session:
        mail.enqueue(session, mail.Kind.TEST, ["ops@example.com"], "test", {})
        session.flush()
    now = utcnow()
    with rt.db.session() as session:  # as a sender that died after claiming
        row = session.scalar(select(MailOutbox))
        row.status, row.attempts, row.next_attempt_at = MailStatus.SENDING, 1, now + timedelta(minutes=15)
    assert send(rt, now).claimed == 0
    assert send(rt, now + timedelta(minutes=16)).sent == 1
    assert len(smtp.received) == 1


def test_two_senders_at_once_send_each_mail_once(rt, smtp) -> None:
    count = 24
    with rt.db.session() as session:
        mail.enqueue(session, mail.Kind.TEST, [f"p{i}@example.com" for i in range(count)], "test", {})
    smtp.delay = 0.01  # each message takes a moment, so the two senders overlap
    now = utcnow()
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait()
            total = 0
            while (result := send_pending(rt.db, transport_for(rt.settings), now, 5)).claimed:
                total += result.sent
            results.append(total)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(results) == count and all(results), results  # both took part
    recipients = [r.recipients[0] for r in smtp.received]
    assert sorted(recipients) == sorted(f"p{i}@example.com" for i in range(count))
    assert len({r.message["Message-ID"] for r in smtp.received}) == count
    assert {row.status for row in outbox(rt)} == {MailStatus.SENT}


def test_committed_mail_is_tried_at_once_in_the_background(rt, smtp) -> None:
    session = rt.db.sessions()
    try:
        mail.enqueue(session, mail.Kind.TEST, ["ops@example.com"], "test", {})
        session.rollback()
        assert mail.send_committed(rt, session) is False  # rolled back: nothing to send
        mail.enqueue(session, mail.Kind.TEST, ["ops@example.com"], "test", {})
        session.commit()
        assert mail.send_committed(rt, session) is True
        assert mail.send_committed(rt, session) is False  # handed over once
    finally:
        session.close()
    assert BACKGROUND.wait(10)
    assert [r.recipients for r in smtp.received] == [["ops@example.com"]]


def test_a_request_page_mails_the_approvers_without_waiting_for_cron(app, rt, cast, smtp) -> None:
    doc = make_document(rt, compiler_id=cast["carl"], grade=2)
    browser = Browser(app, "ann")
    response = browser.request_loan(doc)
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]
    assert BACKGROUND.wait(10)
    assert {r.recipients[0] for r in smtp.received} == {"paula@example.com", "quinn@example.com",
                                                         "abby@example.com"}
    assert send(rt).claimed == 0  # nothing left for cron


def test_with_the_server_down_a_request_page_still_succeeds(app, rt, cast, smtp) -> None:
    smtp.stop()
    doc = make_document(rt, compiler_id=cast["carl"], grade=2)
    response = Browser(app, "ann").request_loan(doc)
    assert response.status_code in (200, 302)
    assert BACKGROUND.wait(15)
    rows = outbox(rt)
    assert len(rows) == 3 and {row.status for row in rows} == {MailStatus.QUEUED}


def test_a_sent_mail_forgets_its_address_and_text_and_still_is_not_queued_twice(rt, cast, smtp) -> None:
    """Sent mail kept its recipient's address, its whole text (a customer's letter carries a single-use answer
    link) and a de-duplication key spelling the address, for ever: a copy of the database listed every
    address ever written to. Once sent (or bundled into a digest), a row keeps what the log of deliveries
    and the de-duplication need: the person, a masked address, the subject, when and how it went. Mail not
    yet sent, or failed, keeps everything its retry or an operator's repair needs."""
    _prefer(rt, cast["quinn"], "loan_requested", "digest")
    smtp.refuse.add("gone@example.com")
    with rt.db.session() as session:
        mail.enqueue(session, mail.Kind.TEST, ["ops@example.com", "gone@example.com"], "test", {}, dedupe="once")
    request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title="First file"))
    now = utcnow()
    assert send(rt, now).sent == 3  # ops, and the approvers abby and paula; gone@ is refused
    assert send_digests(rt.db, now + timedelta(days=1)) == 1 and send(rt, now + timedelta(days=1)).sent == 1
    assert {r.recipients[0] for r in smtp.received} == {f"{name}@example.com" for name in (
        "ops", "abby", "paula", "quinn")}
    rows = outbox(rt)
    done = [row for row in rows if row.status in (MailStatus.SENT, MailStatus.DIGESTED)]
    assert len(done) == 5  # ops, abby, paula, quinn's part and quinn's digest
    for row in done:
        kept = f"{row.recipient} {row.body_text} {row.body_html} {row.dedupe_key}"
        assert not any(f"{name}@" in kept for name in ("ops", *cast)), kept
        assert (row.body_text, row.body_html) == ("", "") and row.recipient.endswith("@example.com")
        assert row.subject
    assert {row.recipient_user_id for row in done} >= {cast["abby"], cast["quinn"]}
    [failed] = [row for row in rows if row.status == MailStatus.FAILED]
    assert failed.recipient == "gone@example.com" and failed.body_text  # for an operator's repair
    # The same event again: still recognised, nothing queued twice.
    with rt.db.session() as session:
        again = mail.enqueue(session, mail.Kind.TEST, ["ops@example.com", "gone@example.com"], "test", {},
                             dedupe="once")
    assert again == [] and len(outbox(rt)) == len(rows)
