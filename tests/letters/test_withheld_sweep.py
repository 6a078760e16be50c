"""A withheld letter's kept address and text, once its reason can no longer pass.

The sender keeps the address and text of a letter withheld for a reason that may pass (the manager it
introduces on notice or unable to sign in, its link expired while it waited), so `vault letter reissue` can
send it once the reason is gone. When the reason then became lasting (the customer handed to a successor, the
letter revoked or superseded), nothing could send it any more, yet its contact's address and the letter stayed
in the outbox for ever. The maintenance sweep now forgets them, as the sender forgets a sent mail's, and
records what it forgot in one `letter:forget` per sweep naming the letters; a letter whose reason may still
pass is kept."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from tests.departure.conftest import OFFICE, days_from_today, run_cli
from tests.letters.conftest import write_contacts
from tests.letters.test_repair import _move
from tests.mail.helpers import send
from vault.models import AuditEvent, CustomerLetter, HandoverItem, MailStatus, User
from vault.models.mail import MailOutbox
from vault.services import departures, letters

JANA = "jana@customer.example"
PER = "per@other.example"


def _letter(rt: Any, customer: int, owner_id: int) -> tuple[int, int]:
    with rt.db.session() as session:
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.customer_id == customer,
                                                             CustomerLetter.new_owner_id == owner_id))
        return letter.id, letter.outbox_id


def _mail(rt: Any, mail_id: int) -> tuple[Any, ...]:
    with rt.db.session() as session:
        row = session.get(MailOutbox, mail_id)
        return row.status, row.recipient, row.body_text, row.body_html, row.last_error


def _forget_records(rt: Any) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "letter:forget")
                                    .order_by(AuditEvent.seq)))


def _sweep(rt: Any, tmp_path: Any) -> str:
    done = run_cli(rt, tmp_path, "maintenance", "run")
    assert done.exit_code == 0, done.output
    return done.output


def test_a_withheld_letter_is_forgotten_once_its_customer_is_handed_to_a_successor(rt, company, smtp, tmp_path):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": [JANA], "main": True}])
    _move(rt, company, customer, "tom")
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "tom"), last_day=days_from_today(20),
                                   successor=None, ctx=OFFICE)
    assert send(rt).withheld == 1
    letter_id, mail_id = _letter(rt, customer, company.ids["tom"])
    status, recipient, text, _html, reason = _mail(rt, mail_id)
    assert (status, recipient) == (MailStatus.WITHHELD, JANA) and "/letter/" in text

    # While the notice may yet be withdrawn, the sweep keeps the letter whole, and records nothing.
    before = _mail(rt, mail_id)
    assert "forgot" not in _sweep(rt, tmp_path)
    assert _mail(rt, mail_id) == before and _forget_records(rt) == []

    # The handover gives the customer to Sue: Tom's letter can never go now.
    with rt.db.session() as session:
        item = session.scalar(select(HandoverItem).where(HandoverItem.customer_id == customer))
        departures.reassign(rt, session, None, item, company.user(session, "sue"), ctx=OFFICE)
    _sue_letter, sue_mail = _letter(rt, customer, company.ids["sue"])
    output = _sweep(rt, tmp_path)
    # Forgotten as a sent mail is; why it was withheld stays for the operator.
    assert _mail(rt, mail_id) == (MailStatus.WITHHELD, "•••@customer.example", "", "", reason)
    assert "forgot the address and text of 1 letter(s) that can never go" in output
    [record] = _forget_records(rt)
    assert record.actor_name.startswith("cli:") and record.outcome == "allowed"
    assert json.loads(record.detail) == {"letters": [letter_id], "mails": [mail_id], "customers": [customer],
                                         "reasons": {"letter_stale": [letter_id]},
                                         "statuses": {"withheld": [letter_id]}}
    # Sue's letter, waiting, is not the sweep's business; it goes.
    assert _mail(rt, sue_mail)[:2] == (MailStatus.QUEUED, JANA)
    send(rt)
    [arrived] = smtp.to(JANA)
    assert "Sue" in arrived.text and "Tom" not in arrived.text

    # Nothing left to forget: the next sweep records nothing; the letter is refused by name, not by its text.
    assert "forgot" not in _sweep(rt, tmp_path)
    assert len(_forget_records(rt)) == 1
    status_output = run_cli(rt, tmp_path, "mail", "status").output
    assert f"withheld #{mail_id} •••@customer.example: letter #{letter_id}: the account manager" in status_output
    refused = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert refused.exit_code == 1 and "its text is forgotten" in refused.output


def test_the_sweep_forgets_a_revoked_letter_and_keeps_one_whose_reason_may_pass(rt, company, smtp, tmp_path):
    """Two letters withheld while Tom could not sign in: one is then revoked (lasting), the other only waits
    for Tom to be enabled again; one sweep forgets the first and keeps the second, which then goes."""
    baltic = company.customer("Baltic Freight")
    nordic = company.customer("Nordic Paper")
    write_contacts(rt, baltic, [{"name": "Jana Novak", "emails": [JANA], "main": True}])
    write_contacts(rt, nordic, [{"name": "Per Olsen", "emails": [PER], "main": True}])
    _move(rt, company, baltic, "tom")
    _move(rt, company, nordic, "tom")
    with rt.db.session() as session:
        company.user(session, "tom").disabled = True
    assert send(rt).withheld == 2
    revoked_id, revoked_mail = _letter(rt, baltic, company.ids["tom"])
    kept_id, kept_mail = _letter(rt, nordic, company.ids["tom"])
    with rt.db.session() as session:
        letters.revoke(rt, session, company.user(session, "adm"), session.get(CustomerLetter, revoked_id),
                       ctx=OFFICE)
    kept_before = _mail(rt, kept_mail)

    assert "forgot the address and text of 1 letter(s) that can never go" in _sweep(rt, tmp_path)
    status, recipient, text, html, _reason = _mail(rt, revoked_mail)
    assert (status, recipient, text, html) == (MailStatus.WITHHELD, "•••@customer.example", "", "")
    assert _mail(rt, kept_mail) == kept_before and kept_before[1] == PER and "/letter/" in kept_before[2]
    [record] = _forget_records(rt)
    detail = json.loads(record.detail)
    assert (detail["letters"], detail["mails"], detail["reasons"]) == ([revoked_id], [revoked_mail],
                                                                       {"letter_revoked": [revoked_id]})
    assert kept_id not in detail["letters"]

    with rt.db.session() as session:
        session.get(User, company.ids["tom"]).disabled = False
    assert run_cli(rt, tmp_path, "letter", "reissue", str(kept_id)).exit_code == 0
    assert send(rt).sent == 1 and len(smtp.to(PER)) == 1 and smtp.to(JANA) == []
