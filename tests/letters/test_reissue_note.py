"""What the contact log says of a re-issued letter's first mail.

Before, every re-issue was noted "its first mail having failed", also for a letter the sender had withheld
(its manager on notice or unable to sign in, its link run out) and never tried to send: the log told the
next owner that the contact's mailbox refused it. The note now says what happened to the first mail."""

from __future__ import annotations

from typing import Any

from tests.departure.conftest import run_cli
from tests.letters import test_repair
from tests.letters.conftest import write_contacts
from tests.letters.test_repair import _move
from tests.letters.test_withheld_sweep import _letter
from tests.mail.helpers import send
from vault.services import records

failed = test_repair.failed  # Tom's letter to Jana, refused for good by her mail server


def _topics(rt: Any, customer: int) -> list[str]:
    with rt.db.session() as session:
        record = records.record_of(session, customer)
        return [line.topic for line in records._log_lines(rt, session, record, customer, reveal=True)]


def test_a_failed_letter_reissued_is_noted_as_failed(rt, company, smtp, failed, tmp_path):
    assert run_cli(rt, tmp_path, "letter", "reissue", str(failed["letter"])).exit_code == 0
    [note] = [topic for topic in _topics(rt, failed["customer"]) if "sent again" in topic]
    assert note.endswith("with a new link, its first mail having failed")


def test_a_withheld_letter_reissued_is_noted_as_withheld_with_its_reason(rt, company, smtp, tmp_path):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": ["jana@customer.example"], "main": True}])
    _move(rt, company, customer, "tom")
    with rt.db.session() as session:
        company.user(session, "tom").disabled = True
    assert send(rt).withheld == 1
    letter_id, _mail_id = _letter(rt, customer, company.ids["tom"])
    with rt.db.session() as session:
        company.user(session, "tom").disabled = False
    assert run_cli(rt, tmp_path, "letter", "reissue", str(letter_id)).exit_code == 0
    [note] = [topic for topic in _topics(rt, customer) if "sent again" in topic]
    assert note.endswith("with a new link, its first mail having been withheld (the account manager it "
                         "introduces could not sign in)")
    assert "failed" not in note
