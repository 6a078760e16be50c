"""Why a letter was withheld, kept as the refusal's code rather than read back from its sentence.

Before, the contact-log note of a re-issued letter found why its first mail was withheld by looking for words
of the refusal's sentence in the mail's `last_error`: a sentence reworded (or translated) left the note saying
only "withheld", or naming the wrong reason had one phrase come to contain another's words. The sender now keeps
the code of `letters.repair_refusal` on the outbox row (`withheld_code`), and the note is worded from the code.
Each test rewrites the error's text before the re-issue, so a note still right depends on the code alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.departure.conftest import OFFICE, days_from_today, run_cli
from tests.letters.conftest import write_contacts
from tests.letters.test_repair import _move
from tests.letters.test_withheld_sweep import _letter
from tests.mail.helpers import send
from vault.models import CustomerLetter, Departure, utcnow
from vault.models.mail import MailOutbox
from vault.services import departures, records

JANA = "jana@customer.example"
REWORDED = "letter: something the sender once said, in other words"


def _topics(rt: Any, customer: int) -> list[str]:
    with rt.db.session() as session:
        record = records.record_of(session, customer)
        return [line.topic for line in records._log_lines(rt, session, record, customer, reveal=True)]


def _disable(rt: Any, company: Any, customer: int) -> Any:
    with rt.db.session() as session:
        company.user(session, "tom").disabled = True

    def passes() -> None:
        with rt.db.session() as session:
            company.user(session, "tom").disabled = False
    return passes


def _notice(rt: Any, company: Any, customer: int) -> Any:
    with rt.db.session() as session:
        departure_id = departures.start_departure(rt, session, None, company.user(session, "tom"),
                                                  last_day=days_from_today(20), successor=None, ctx=OFFICE).id

    def passes() -> None:
        with rt.db.session() as session:
            departures.withdraw(rt, session, None, session.get(Departure, departure_id),
                                reason="Stays with the company after all", ctx=OFFICE)
    return passes


def _expire(rt: Any, company: Any, customer: int) -> Any:
    with rt.db.session() as session:
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.customer_id == customer))
        letter.expires_at = utcnow() - timedelta(days=1)
    return lambda: None  # a re-issue gives a fresh link: nothing else has to pass


@pytest.mark.parametrize(("code", "withhold", "said"), [
    ("manager_inactive", _disable, "the account manager it introduces could not sign in"),
    ("owner_on_notice", _notice, "the account manager it introduces had given notice"),
    ("letter_expired", _expire, "its link had expired while it waited"),
])
def test_the_reissue_note_names_the_withholding_reason_from_its_code(rt, company, smtp, tmp_path, code, withhold,
                                                                      said):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": [JANA], "main": True}])
    _move(rt, company, customer, "tom")
    passes = withhold(rt, company, customer)
    assert send(rt).withheld == 1
    letter_id, mail_id = _letter(rt, customer, company.ids["tom"])
    with rt.db.session() as session:
        mail = session.get(MailOutbox, mail_id)
        assert mail.withheld_code == code
        mail.last_error = REWORDED  # the wording may change; the note must not
    status = run_cli(rt, tmp_path, "mail", "status")
    assert f"withheld #{mail_id} •••@customer.example: {REWORDED} [{code}]" in status.output
    passes()
    done = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert done.exit_code == 0, done.output
    [note] = [topic for topic in _topics(rt, customer) if "sent again" in topic]
    assert note.endswith(f"with a new link, its first mail having been withheld ({said})")
    with rt.db.session() as session:  # the new mail is not withheld, and carries no code
        fresh = session.get(MailOutbox, session.get(CustomerLetter, letter_id).outbox_id)
        assert fresh.withheld_code is None


def test_a_withheld_letter_without_a_code_is_noted_only_as_withheld(rt, company, smtp, tmp_path):
    """A row withheld before codes were kept, which the migration could not classify: the note says no more
    than it knows, whatever its error's text says."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": [JANA], "main": True}])
    _move(rt, company, customer, "tom")
    passes = _disable(rt, company, customer)
    assert send(rt).withheld == 1
    letter_id, mail_id = _letter(rt, customer, company.ids["tom"])
    with rt.db.session() as session:
        mail = session.get(MailOutbox, mail_id)
        mail.withheld_code = None
        mail.last_error = f"letter #{letter_id}: its link expired on 2026-01-01, is on notice, can no longer sign in"
    passes()
    assert run_cli(rt, tmp_path, "letter", "reissue", str(letter_id)).exit_code == 0
    [note] = [topic for topic in _topics(rt, customer) if "sent again" in topic]
    assert note.endswith("with a new link, its first mail having been withheld")

