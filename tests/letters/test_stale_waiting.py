"""A letter's mail still waiting in the outbox when the letter stops holding for good.

Before, only the repair commands (`vault mail retry`, `vault letter reissue`) asked whether a letter still held;
the sender mailed a waiting letter whatever had happened since it was written: a customer moved on to someone
else (the contact was introduced to a manager who no longer looks after them, beside the letter about the
one who does), or a letter its new owner revoked (the contact got a link that opens only a "revoked" page).
The sender now asks the repair commands' own question (`letters.repair_refusal`) when a letter comes due and
withholds one that would be refused, its reason shown by `vault mail status`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.departure.conftest import OFFICE, run_cli
from tests.letters.conftest import write_contacts
from tests.letters.test_repair import _move
from tests.mail.helpers import send
from vault.models import CustomerLetter, MailStatus
from vault.models.mail import MailOutbox
from vault.services import letters

JANA = "jana@customer.example"
ONE_CONTACT = [{"name": "Jana Novak", "emails": [JANA], "main": True}]


def _letter_and_mail(rt: Any, owner_id: int) -> tuple[CustomerLetter, MailOutbox]:
    with rt.db.session() as session:
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.new_owner_id == owner_id))
        return letter, session.get(MailOutbox, letter.outbox_id)


def test_a_waiting_letter_whose_customer_moved_on_is_withheld_and_the_current_one_goes(rt, company, smtp, tmp_path):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, ONE_CONTACT)
    _move(rt, company, customer, "tom")
    _move(rt, company, customer, "sue")  # before the sender ran: Jana's letter about Tom still waits

    result = send(rt)
    assert (result.sent, result.withheld, result.failed) == (1, 1, 0)
    [arrived] = smtp.to(JANA)
    assert "Sue" in arrived.text and "Tom" not in arrived.text
    letter, mail = _letter_and_mail(rt, company.ids["tom"])
    # Withheld for good: nothing can make the letter hold again, so its address and text (and link) are
    # forgotten, as a sent mail's are; the reason stays for the operator.
    assert (mail.status, mail.recipient, mail.body_text, mail.body_html, mail.sent_at) == (
        MailStatus.WITHHELD, "•••@customer.example", "", "", None)
    assert mail.last_error is not None and mail.last_error.startswith(
        f"letter #{letter.id}: the customer has changed owner since")
    assert send(rt).claimed == 0

    status = run_cli(rt, tmp_path, "mail", "status")
    assert status.exit_code == 0, status.output
    assert f"withheld #{mail.id} •••@customer.example: letter #{letter.id}: the customer has changed owner since" \
        in status.output
    assert "jana" not in status.output


def test_a_waiting_letter_revoked_before_it_went_is_withheld(rt, company, smtp, tmp_path):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, ONE_CONTACT)
    _move(rt, company, customer, "tom")
    with rt.db.session() as session:
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.customer_id == customer))
        letters.revoke(rt, session, company.user(session, "tom"), letter, ctx=OFFICE)

    result = send(rt)
    assert (result.sent, result.withheld) == (0, 1)
    assert smtp.received == []
    letter, mail = _letter_and_mail(rt, company.ids["tom"])
    assert (mail.status, mail.body_text) == (MailStatus.WITHHELD, "")
    assert mail.last_error is not None and mail.last_error.startswith(f"letter #{letter.id}: its link was revoked")
    status = run_cli(rt, tmp_path, "mail", "status")
    assert f"withheld #{mail.id} •••@customer.example: letter #{letter.id}: its link was revoked" in status.output
    # Nor repaired: the sender and the repair commands give the same answer.
    reissued = run_cli(rt, tmp_path, "letter", "reissue", str(letter.id))
    assert reissued.exit_code == 1 and "was withheld" in reissued.output


def test_the_control_a_waiting_letter_that_still_holds_goes(rt, company, smtp):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, ONE_CONTACT)
    _move(rt, company, customer, "tom")
    assert (send(rt).sent, len(smtp.to(JANA))) == (1, 1)
    _letter, mail = _letter_and_mail(rt, company.ids["tom"])
    assert (mail.status, mail.last_error) == (MailStatus.SENT, None)
