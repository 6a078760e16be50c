"""Why a letter was withheld, kept as the refusal's code rather than read back from its sentence.

Before, the contact-log note of a re-issued letter found why its first mail was withheld by looking for words
of the refusal's sentence in the mail's `last_error`: a sentence reworded (or translated) left the note saying
only "withheld", or naming the wrong reason had one phrase come to contain another's words. The sender now keeps
the code of `letters.repair_refusal` on the outbox row (`withheld_code`), and the note is worded from the code.
Each test rewrites the error's text before the re-issue, so a note still right depends on the code alone."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.departure.conftest import OFFICE, days_from_today, run_cli
from tests.letters.conftest import write_contacts
from tests.letters.test_repair import _events, _move
from tests.letters.test_withheld_sweep import _letter
from tests.mail.helpers import send
from vault.models import CustomerLetter, Departure, utcnow
from vault.models.mail import MailOutbox
from vault.services import departures, letters, records

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



def _revoke(rt: Any, company: Any, customer: int) -> Any:
    with rt.db.session() as session:
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.customer_id == customer))
        letters.revoke(rt, session, company.user(session, "tom"), letter, ctx=OFFICE)
    return lambda: None  # lasting: nothing makes a revoked letter hold again


@pytest.mark.parametrize(("code", "withhold"), [
    ("manager_inactive", _disable), ("owner_on_notice", _notice), ("letter_expired", _expire),
    ("letter_revoked", _revoke),
])
def test_a_refused_retry_of_a_withheld_letter_names_the_stored_reason(rt, company, smtp, tmp_path, code, withhold):
    """Before, `vault mail retry` refused every withheld letter under the one code `withheld`, though the row
    keeps why it was withheld: the refusal (its printed line, the denied `mail:retry`, and the `letter:reissue`
    refused for a letter whose text is forgotten) now names that reason, its code and its sentence."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": [JANA], "main": True}])
    _move(rt, company, customer, "tom")
    withhold(rt, company, customer)
    assert send(rt).withheld == 1
    letter_id, mail_id = _letter(rt, customer, company.ids["tom"])
    with rt.db.session() as session:
        said = session.get(MailOutbox, mail_id).last_error
    assert said and said.startswith(f"letter #{letter_id}: ")
    retried = run_cli(rt, tmp_path, "mail", "retry", str(mail_id))
    assert retried.exit_code == 1
    assert f"refused #{mail_id}: was withheld ({said}) [{code}]; " in retried.output
    [denied] = _events(rt, "mail:retry", "denied")
    assert (denied.reason_code, json.loads(denied.detail)["letter_id"]) == (code, letter_id)
    if code == "letter_revoked":  # its text is forgotten: the re-issue is refused for the same stored reason
        reissued = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
        assert reissued.exit_code == 1 and f"[{code}]" in reissued.output
        [refused] = _events(rt, "letter:reissue", "denied")
        assert refused.reason_code == code


def test_a_withheld_letter_without_a_stored_code_is_refused_as_withheld(rt, company, smtp, tmp_path):
    """A row withheld before codes were kept, which the migration could not classify: the refusal claims no
    reason it does not know."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": [JANA], "main": True}])
    _move(rt, company, customer, "tom")
    _disable(rt, company, customer)
    assert send(rt).withheld == 1
    _letter_id, mail_id = _letter(rt, customer, company.ids["tom"])
    with rt.db.session() as session:
        session.get(MailOutbox, mail_id).withheld_code = None
    retried = run_cli(rt, tmp_path, "mail", "retry", str(mail_id))
    assert retried.exit_code == 1 and "[" not in retried.output.split(f"refused #{mail_id}: ", 1)[1].split(";")[0]
    [denied] = _events(rt, "mail:retry", "denied")
    assert denied.reason_code == "withheld"
