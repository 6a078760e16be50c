"""How long a letter that could not go keeps its contact's address and text after its link expired.

Before, a letter withheld only because its link expired (or whose mail failed and whose link then ran out)
kept the customer's contact address and the letter's text in the outbox until someone re-issued it, with no
age limit: the maintenance sweep forgets only a letter whose reason is lasting, and a link that merely ran
out is not. The sweep now also forgets such a letter `VAULT_LETTER_KEEP_DAYS` (90 by default) after its link
expired, as it forgets the others (`letter:forget`, reason `letter_expired`); until then it is kept for a
re-issue. Time is moved with the clock."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.departure.conftest import OFFICE, run_cli
from tests.letters import test_repair
from tests.letters.conftest import write_contacts
from tests.letters.test_expired_waiting import _waiting_letter
from tests.letters.test_repair import _move
from tests.letters.test_withheld_sweep import _forget_records, _letter, _mail, _sweep
from tests.mail.helpers import send
from vault.config.errors import ConfigError
from vault.config.settings import load_settings
from vault.models import CustomerLetter, MailStatus, utcnow
from vault.services import letters

JANA = "jana@customer.example"
MASKED = "•••@customer.example"
failed = test_repair.failed  # Tom's letter to Jana, refused for good by her mail server


def _expires_at(rt: Any, letter_id: int) -> Any:
    with rt.db.session() as session:
        return session.get(CustomerLetter, letter_id).expires_at


def test_a_letter_withheld_for_its_expired_link_is_forgotten_after_the_keeping_days(
        rt, company, smtp, tmp_path, clock):
    letter_id, mail_id = _waiting_letter(rt, company)  # its link ran out two days ago
    assert send(rt).withheld == 1
    status, recipient, text, _html, reason = _mail(rt, mail_id)
    assert (status, recipient) == (MailStatus.WITHHELD, JANA) and "/letter/" in text
    expired = _expires_at(rt, letter_id)

    # Up to ninety days after the link expired the letter is kept whole for a re-issue, and nothing recorded.
    clock.freeze(expired + timedelta(days=90) - timedelta(minutes=1))
    before = _mail(rt, mail_id)
    assert "forgot" not in _sweep(rt, tmp_path)
    assert _mail(rt, mail_id) == before and _forget_records(rt) == []

    clock.freeze(expired + timedelta(days=90))
    output = _sweep(rt, tmp_path)
    # Said as what it is: not a letter that can never go, one kept its days after its link ran out.
    assert "forgot the address and text of 1 letter(s) whose link expired more than 90 day(s) ago " \
           "(letter_expired 1)" in output
    assert "can never go" not in output
    assert _mail(rt, mail_id) == (MailStatus.WITHHELD, MASKED, "", "", reason)  # why it was withheld stays
    [record] = _forget_records(rt)
    assert record.outcome == "allowed"
    with rt.db.session() as session:
        customer = session.get(CustomerLetter, letter_id).customer_id
    assert json.loads(record.detail) == {"letters": [letter_id], "mails": [mail_id], "customers": [customer],
                                         "reasons": {"letter_expired": [letter_id]},
                                         "statuses": {"withheld": [letter_id]}}
    # Forgotten is forgotten: nothing can send it, and the next sweep has nothing to say.
    refused = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert refused.exit_code == 1 and "its text is forgotten" in refused.output
    assert "forgot" not in _sweep(rt, tmp_path) and len(_forget_records(rt)) == 1


def test_a_failed_letter_whose_link_expired_is_forgotten_after_the_keeping_days(
        rt, company, smtp, failed, tmp_path, clock):
    with rt.db.session() as session:
        session.get(CustomerLetter, failed["letter"]).expires_at = utcnow() - timedelta(days=1)
    expired = _expires_at(rt, failed["letter"])
    clock.freeze(expired + timedelta(days=89))
    assert "forgot" not in _sweep(rt, tmp_path)
    assert _mail(rt, failed["mail"])[:2] == (MailStatus.FAILED, JANA)
    clock.freeze(expired + timedelta(days=91))
    assert "forgot the address and text of 1 letter(s)" in _sweep(rt, tmp_path)
    status, recipient, text, html, error = _mail(rt, failed["mail"])
    assert (status, recipient, text, html) == (MailStatus.FAILED, MASKED, "", "") and "550" in (error or "")
    [record] = _forget_records(rt)
    assert json.loads(record.detail)["reasons"] == {"letter_expired": [failed["letter"]]}
    assert json.loads(record.detail)["statuses"] == {"failed": [failed["letter"]]}
    retried = run_cli(rt, tmp_path, "mail", "retry", str(failed["mail"]))
    assert retried.exit_code == 1 and "its text is forgotten" in retried.output


def test_the_sweep_counts_what_it_forgot_by_reason(rt, company, smtp, tmp_path, clock):
    """Before, `vault maintenance run` called every forgotten letter one "that can never go", also one forgotten
    only because its link expired longer ago than `VAULT_LETTER_KEEP_DAYS` (a re-issue could have sent it until
    then). The print-out now says which is which, with a count per reason, as `letter:forget` records them."""
    expired_id, _mail = _waiting_letter(rt, company)  # Baltic Freight: its link ran out two days ago
    other = company.customer("Nordic Timber")
    write_contacts(rt, other, [{"name": "Olga Berg", "emails": ["olga@timber.example"], "main": True}])
    _move(rt, company, other, "tom")
    with rt.db.session() as session:
        stale = session.scalar(select(CustomerLetter).where(CustomerLetter.customer_id == other))
        stale.expires_at = utcnow() - timedelta(days=2)
        stale_id = stale.id
    assert send(rt).withheld == 2  # both withheld for their expired links, kept for a re-issue
    _move(rt, company, other, "sue")  # Nordic Timber's letter now introduces someone who no longer owns it
    clock.freeze(_expires_at(rt, expired_id) + timedelta(days=90))
    output = _sweep(rt, tmp_path)
    assert ("forgot the address and text of 1 letter(s) that can never go (letter_stale 1) and of 1 letter(s) "
            "whose link expired more than 90 day(s) ago (letter_expired 1)") in output
    [record] = _forget_records(rt)
    assert json.loads(record.detail)["reasons"] == {"letter_stale": [stale_id], "letter_expired": [expired_id]}


def test_a_letter_reissued_within_the_keeping_days_is_counted_from_its_new_link(rt, company, smtp, tmp_path, clock):
    """The control: the days count from the link's end, so a re-issue (a fresh link) starts them again, and a
    letter whose link still opens is never the age rule's business."""
    letter_id, _mail_id = _waiting_letter(rt, company)
    assert send(rt).withheld == 1
    clock.freeze(_expires_at(rt, letter_id) + timedelta(days=60))
    assert run_cli(rt, tmp_path, "letter", "reissue", str(letter_id)).exit_code == 0
    with rt.db.session() as session:
        fresh_mail = session.get(CustomerLetter, letter_id).outbox_id
    smtp.refuse = {JANA}
    assert send(rt).failed == 1
    fresh_end = _expires_at(rt, letter_id)
    assert fresh_end > utcnow()
    clock.freeze(fresh_end + timedelta(days=89))  # 149 days after the first link ran out: still kept
    assert "forgot" not in _sweep(rt, tmp_path)
    assert _mail(rt, fresh_mail)[:2] == (MailStatus.FAILED, JANA)
    clock.advance(timedelta(days=2))
    assert "forgot" in _sweep(rt, tmp_path)
    assert _mail(rt, fresh_mail)[:3] == (MailStatus.FAILED, MASKED, "")


def test_the_keeping_days_are_a_setting(rt, company, smtp, tmp_path, clock):
    letter_id, mail_id = _waiting_letter(rt, company)
    assert send(rt).withheld == 1
    clock.freeze(_expires_at(rt, letter_id) + timedelta(days=8))
    rt.settings = replace(rt.settings, letter_keep_days=10)
    with rt.db.session() as session:
        assert letters.forget_unsendable(rt, session, ctx=OFFICE, now=utcnow()) == {}
    rt.settings = replace(rt.settings, letter_keep_days=7)
    with rt.db.session() as session:
        assert letters.forget_unsendable(rt, session, ctx=OFFICE, now=utcnow()) == {"letter_expired": [letter_id]}
    assert _mail(rt, mail_id)[1] == MASKED
    with rt.db.session() as session:
        assert session.scalar(select(CustomerLetter.id).where(CustomerLetter.id == letter_id)) == letter_id


def test_the_keeping_days_are_read_from_the_environment_and_checked():
    assert load_settings(environ={}).letter_keep_days == 90
    assert load_settings(environ={"VAULT_LETTER_KEEP_DAYS": "30"}).letter_keep_days == 30
    for wrong in ("0", "-1", "100000", "ninety"):
        with pytest.raises(ConfigError):
            load_settings(environ={"VAULT_LETTER_KEEP_DAYS": wrong})


def test_a_letter_withheld_for_a_reason_that_may_pass_is_not_kept_for_ever_either(rt, company, smtp, tmp_path,
                                                                                   clock):
    """Withheld while its manager could not sign in, a reason that may pass: kept for a re-issue, but the days
    count from its link's end as for any other, since an introduction that old is stale and the contact's
    address must not outlive its use."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": [JANA], "main": True}])
    _move(rt, company, customer, "tom")
    with rt.db.session() as session:
        company.user(session, "tom").disabled = True
    assert send(rt).withheld == 1
    letter_id, mail_id = _letter(rt, customer, company.ids["tom"])
    clock.freeze(_expires_at(rt, letter_id) + timedelta(days=89))
    assert "forgot" not in _sweep(rt, tmp_path) and _mail(rt, mail_id)[1] == JANA
    clock.advance(timedelta(days=1))
    assert "forgot" in _sweep(rt, tmp_path) and _mail(rt, mail_id)[1:3] == (MASKED, "")
    [record] = _forget_records(rt)
    assert json.loads(record.detail)["reasons"] == {"letter_expired": [letter_id]}
