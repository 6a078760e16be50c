"""A failed letter's kept address and text, once no repair can send it any more.

A letter whose mail failed for good keeps its address and text, as every failed mail does, so `vault mail
retry` or `vault letter reissue` can send it again. Once the letter's own rule refuses it for good (the
customer handed on, the letter revoked, answered or superseded), nothing can, yet the contact's address and
the letter, link included, stayed in the outbox for ever. The maintenance sweep that forgets such a withheld
letter now forgets such a failed one too, with the same `letter:forget` record; a failed letter whose refusal
may still pass (only its link ran out: a re-issue gives it a fresh one) is kept."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.departure.conftest import run_cli
from tests.letters import test_repair
from tests.letters.test_repair import _move
from tests.letters.test_withheld_sweep import _forget_records, _mail, _sweep
from vault.models import CustomerLetter, MailStatus, utcnow

failed = test_repair.failed  # Tom's letter to Jana, refused for good by her mail server


def test_a_failed_letter_is_forgotten_once_its_customer_has_moved_on(rt, company, smtp, failed, tmp_path):
    mail_id, letter_id = failed["mail"], failed["letter"]
    status, recipient, text, _html, error = _mail(rt, mail_id)
    assert (status, recipient) == (MailStatus.FAILED, "jana@customer.example") and failed["link"] in text

    # A failed letter the repairs may still send is kept whole, even with its link run out (a re-issue
    # gives it a fresh one); the sweep records nothing.
    with rt.db.session() as session:
        session.get(CustomerLetter, letter_id).expires_at = utcnow()
    before = _mail(rt, mail_id)
    assert "forgot" not in _sweep(rt, tmp_path)
    assert _mail(rt, mail_id) == before and _forget_records(rt) == []

    # The customer goes to Sue: no repair may send Tom's letter now, so the sweep forgets it as a sent mail's,
    # keeping the server's answer for `vault mail status`.
    _move(rt, company, failed["customer"], "sue")
    output = _sweep(rt, tmp_path)
    assert "forgot the address and text of 1 letter(s) that can never go" in output
    assert _mail(rt, mail_id) == (MailStatus.FAILED, "•••@customer.example", "", "", error)
    [record] = _forget_records(rt)
    assert record.actor_name.startswith("cli:") and record.outcome == "allowed"
    assert json.loads(record.detail) == {"letters": [letter_id], "mails": [mail_id],
                                         "customers": [failed["customer"]],
                                         "reasons": {"letter_stale": [letter_id]},
                                         "statuses": {"failed": [letter_id]}}

    # Nothing left to forget; the repairs refuse it by its forgotten text, saying why.
    assert "forgot" not in _sweep(rt, tmp_path) and len(_forget_records(rt)) == 1
    retried = run_cli(rt, tmp_path, "mail", "retry", str(mail_id))
    assert retried.exit_code == 1 and "its text is forgotten: the letter can never go" in retried.output
    reissued = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert reissued.exit_code == 1 and "its text is forgotten" in reissued.output


def test_a_revoked_failed_letter_is_forgotten_and_the_delivered_ones_are_left_alone(rt, company, smtp, failed,
                                                                                     tmp_path):
    """A revoked link is lasting: the failed letter goes; the change's other letters, delivered, are not
    the sweep's business."""
    with rt.db.session() as session:
        session.get(CustomerLetter, failed["letter"]).revoked_at = utcnow()
    assert "forgot the address and text of 1 letter(s)" in _sweep(rt, tmp_path)
    detail = json.loads(_forget_records(rt)[0].detail)
    assert detail["reasons"] == {"letter_revoked": [failed["letter"]]}
    assert detail["statuses"] == {"failed": [failed["letter"]]}
    with rt.db.session() as session:
        delivered = session.scalars(select(CustomerLetter).where(CustomerLetter.customer_id == failed["customer"],
                                                                 CustomerLetter.id != failed["letter"])).all()
        assert delivered and all(letter.outbox_id for letter in delivered)
