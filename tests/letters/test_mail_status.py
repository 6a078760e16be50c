"""`vault mail status` shows the operator why mail is stuck, not a customer's contacts.

Its latest errors printed each failing mail's address in clear: for a letter to a customer's main contact,
that contact's mailbox, which the product otherwise opens only under a reveal quota or as its own
recorded act, read by anyone at the server's command line with no record. The mailbox is now masked to its
domain (which mail server refused it, all a repair needs), in the address and in the error's text."""

from __future__ import annotations

from typing import Any

from tests.departure.conftest import OFFICE, run_cli
from tests.letters.conftest import write_contacts
from tests.mail.helpers import send
from vault.models import Customer
from vault.services import customers


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
