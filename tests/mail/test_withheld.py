"""Mail that waited while its recipient lost the right to be told is withheld, not sent.

A request to decide names the customer and the file, as the queue does. Once its approver gives notice
(and so decides nothing for others, and is shown no queue), the request they were mailed before must not
reach them after all: not from the queue's next send, nor a day later in their digest. Nor does anything
reach someone whose account was disabled in between.
"""

from __future__ import annotations

from datetime import timedelta

from tests.mail.conftest import SECURITY, give_email
from tests.mail.helpers import CTX, decide, give_notice, make_document, outbox, request, send
from vault.alerts import Finding, raise_alert
from vault.core.context import AccessContext
from vault.mail import preferences, send_digests
from vault.models import MailStatus, Severity, User, utcnow
from vault.services import accounts


def test_a_request_queued_before_its_approver_gave_notice_is_withheld(rt, cast, smtp) -> None:
    request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title="Pricing 2027"))
    queued = {row.recipient_user_id: row.id for row in outbox(rt)}
    assert set(queued) == {cast["paula"], cast["quinn"], cast["abby"]}
    give_notice(rt, cast["paula"])

    assert send(rt).withheld == 1
    requests = [r for r in smtp.received if r.message["Subject"].startswith("Loan request")]
    assert sorted(r.recipients[0] for r in requests) == ["abby@example.com", "quinn@example.com"]
    [withheld] = [row for row in outbox(rt) if row.id == queued[cast["paula"]]]
    # Never sent, and nothing of it kept to be sent later: the address masked, the text gone.
    assert (withheld.status, withheld.sent_at, withheld.recipient) == (MailStatus.WITHHELD, None, "•••@example.com")
    assert (withheld.body_text, withheld.body_html) == ("", "")
    assert send(rt).claimed == 0


def test_a_request_waiting_for_the_digest_is_withheld_once_its_approver_is_on_notice(rt, cast, smtp) -> None:
    with rt.db.session() as session:
        preferences.set_modes(rt, session, session.get(User, cast["quinn"]), {"loan_requested": "digest"},
                              ctx=AccessContext.cli())
    request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title="First file"))
    request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title="Second file"))
    give_notice(rt, cast["quinn"])

    tomorrow = utcnow() + timedelta(days=1)
    assert send_digests(rt.db, tomorrow) == 0
    parts = [row for row in outbox(rt) if row.recipient_user_id == cast["quinn"]]
    assert [(row.status, row.body_text, row.recipient) for row in parts] == [
        (MailStatus.WITHHELD, "", "•••@example.com")] * 2
    send(rt, tomorrow)
    assert smtp.to("quinn@example.com") == []


def test_nothing_reaches_someone_disabled_after_the_mail_was_queued(rt, cast, smtp) -> None:
    loan_id = request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2, title="Pricing 2027"))
    send(rt)
    smtp.received.clear()
    decide(rt, cast["paula"], loan_id, "approve")  # queues "your request is approved" to ann
    with rt.db.session() as session:
        accounts.disable_user(rt, session, session.get(User, cast["ann"]), None, CTX, reason="Left the company")
    result = send(rt)
    assert (result.sent, result.withheld) == (0, 1)
    assert smtp.received == []


def test_a_security_alert_still_reaches_a_contact_whatever_their_account(rt, cast, smtp) -> None:
    """It exists to be read: a contact address that is also a disabled person's still gets it."""
    give_email(rt, cast["adam"], SECURITY[0])
    with rt.db.session() as session:
        accounts.disable_user(rt, session, session.get(User, cast["adam"]), None, CTX, reason="Left the company")
        raise_alert(rt, session, session.get(User, cast["ann"]),
                    Finding("probing", Severity.MEDIUM, "w1", "Ten refused attempts", {}))
    assert send(rt).sent == len(SECURITY)
    assert {r.recipients[0] for r in smtp.received} == set(SECURITY)
