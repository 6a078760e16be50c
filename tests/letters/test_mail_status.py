"""`vault mail status` shows the operator why mail is stuck, not a customer's contacts.

Its latest errors printed each failing mail's address in clear: for a letter to a customer's main contact,
that contact's mailbox, which the product otherwise opens only under a reveal quota or as its own
recorded act, read by anyone at the server's command line with no record. The mailbox is now masked to its
domain (which mail server refused it, all a repair needs), in the address and in the error's text."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from tests.departure.conftest import OFFICE, run_cli
from tests.letters.conftest import write_contacts
from tests.mail.helpers import send
from vault.mail.kinds import Kind
from vault.mail.retention import FORGET_ON_FAILURE
from vault.models import Customer, CustomerLetter, MailStatus
from vault.models.mail import MailOutbox
from vault.services import customers, letters


def test_a_refused_letter_shows_the_contact_s_mail_server_not_their_mailbox(rt: Any, company: Any, smtp: Any,
                                                                             tmp_path: Any) -> None:
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer)
    smtp.refuse = {"jana@customer.example"}
    with rt.db.session() as session:
        customers.set_owner(rt, session, company.user(session, "ann"), session.get(Customer, customer),
                            company.user(session, "tom"), ctx=OFFICE, reason="Territory change")
    send(rt)
    status = run_cli(rt, tmp_path, "mail", "status")
    assert status.exit_code == 0, status.output
    errors = [line for line in status.output.splitlines() if line.startswith("error #")]
    [refused] = errors
    # What a repair needs stays: which server, which mail server's domain, and the refusal itself.
    assert "•••@customer.example (failed)" in refused and "550 5.1.1 no such mailbox" in refused, refused
    assert "jana" not in status.output


def test_a_refused_letter_keeps_its_text_the_only_copy_of_its_link(rt: Any, company: Any, smtp: Any) -> None:
    """Unlike a password link's mail (forgotten when it fails for good: its repair is a new link), a failed
    letter keeps its address and text. The letter's row holds only its link's hash, one letter per contact and
    change (a second emission writes nothing), and a letter to an earlier address names no contact of the
    record: nothing can make the letter again, so the kept text is what an operator repairs it from."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer)
    smtp.refuse = {"jana@customer.example"}
    with rt.db.session() as session:
        customers.set_owner(rt, session, company.user(session, "ann"), session.get(Customer, customer),
                            company.user(session, "tom"), ctx=OFFICE, reason="Territory change")
    send(rt)
    with rt.db.session() as session:
        [failed] = session.scalars(select(MailOutbox).where(MailOutbox.kind == str(Kind.CUSTOMER_LETTER),
                                                            MailOutbox.status == MailStatus.FAILED)).all()
        assert failed.recipient == "jana@customer.example"
        link = re.search(r"/letter/([\w.-]+)", failed.body_text).group(1)  # type: ignore[union-attr]
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.outbox_id == failed.id))
        assert letter is not None and letter.token_hash == letters.link_hash(link) and link not in str(vars(letter))
        assert letters.open_link(rt, session, link).id == letter.id  # still answerable once delivered by hand
    assert str(Kind.CUSTOMER_LETTER) not in FORGET_ON_FAILURE
