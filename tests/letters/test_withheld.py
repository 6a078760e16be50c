"""A letter's mail still waiting in the outbox when the manager it introduces gives notice.

`vault letter reissue` and `vault mail retry` refuse a letter introducing an account manager on notice
(`owner_on_notice`), but the sender sent one still waiting as it was: the customer was introduced to a
leaver as their new account manager. The sender now withholds it when it comes due, as it withholds a request
to decide sent to someone on notice (`withheld`, address masked, text forgotten), and the departure's
handover still writes the customer its letter about the successor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.departure.conftest import OFFICE, days_from_today, run_cli
from tests.letters.conftest import links, write_contacts
from tests.letters.test_repair import _move
from tests.mail.helpers import send
from vault.mail import Kind
from vault.models import CustomerLetter, HandoverItem, MailStatus
from vault.models.mail import MailOutbox
from vault.services import departures, letters

ADDRESSES = {"jana@customer.example", "li.wei@customer.example", "olga@customer.example"}


def _letter_mail(rt: Any, owner_id: int) -> list[MailOutbox]:
    with rt.db.session() as session:
        ids = session.scalars(select(CustomerLetter.outbox_id).where(CustomerLetter.new_owner_id == owner_id))
        return list(session.scalars(select(MailOutbox).where(MailOutbox.id.in_(list(ids)))
                                    .order_by(MailOutbox.id)))


def test_a_waiting_letter_introducing_a_leaver_is_withheld_and_the_handover_writes_the_successors(
        rt, company, smtp, tmp_path):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer)
    _move(rt, company, customer, "tom")  # three letters introducing Tom, waiting for the sender
    assert {m.status for m in _letter_mail(rt, company.ids["tom"])} == {MailStatus.QUEUED}
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "tom"), last_day=days_from_today(20),
                                   successor=None, ctx=OFFICE)

    result = send(rt)
    assert (result.sent, result.withheld, result.failed) == (0, 3, 0)
    assert smtp.received == []
    for mail in _letter_mail(rt, company.ids["tom"]):
        # Recorded as any withheld mail: never sent, the address masked, the text (and its link) forgotten.
        assert (mail.status, mail.recipient, mail.body_text, mail.body_html, mail.sent_at) == (
            MailStatus.WITHHELD, "•••@customer.example", "", "", None)
    assert send(rt).claimed == 0  # withheld for good, not claimed again
    # Nor repaired: its text is gone, and what it said no longer holds.
    with rt.db.session() as session:
        letter_id = session.scalar(select(CustomerLetter.id).where(CustomerLetter.new_owner_id == company.ids["tom"])
                                   .order_by(CustomerLetter.id).limit(1))
        mail_id = session.get(CustomerLetter, letter_id).outbox_id
    reissued = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert reissued.exit_code == 1
    assert (f"its mail #{mail_id} was withheld: the account manager it introduces had given notice (its text is "
            "forgotten)") in reissued.output

    # The handover gives the customer to Sue: that change writes its own letters, and they go.
    with rt.db.session() as session:
        item = session.scalar(select(HandoverItem).where(HandoverItem.customer_id == customer))
        departures.reassign(rt, session, None, item, company.user(session, "sue"), ctx=OFFICE)
        item_id = item.id
    assert send(rt).withheld == 0
    found = links(smtp)
    assert set(found) == ADDRESSES
    jana = next(m for m in smtp.received if m.recipients == ["jana@customer.example"])
    assert "Sue" in jana.text and "Tom" not in jana.text
    with rt.db.session() as session:
        opened = letters.open_link(rt, session, found["jana@customer.example"].removeprefix("/letter/"))
        assert (opened.new_owner_id, opened.handover_item_id, opened.cause) == (company.ids["sue"], item_id,
                                                                               "handover")
    assert {m.status for m in _letter_mail(rt, company.ids["sue"])} == {MailStatus.SENT}


def test_a_successor_named_at_notice_is_introduced_and_the_leaver_is_not(rt, company, smtp):
    """The notice names Sue at once: the customer moves to her in the notice's own transaction, and of the two
    letters waiting, Tom's (the leaver's) is withheld and Sue's goes."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": ["jana@customer.example"], "main": True}])
    _move(rt, company, customer, "tom")
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, company.user(session, "tom"), last_day=days_from_today(20),
                                   successor=company.user(session, "sue"), ctx=OFFICE)
    result = send(rt)
    assert result.withheld == 1
    [tom_mail] = _letter_mail(rt, company.ids["tom"])
    [sue_mail] = _letter_mail(rt, company.ids["sue"])
    assert (tom_mail.status, sue_mail.status) == (MailStatus.WITHHELD, MailStatus.SENT)
    [jana] = smtp.to("jana@customer.example")
    assert "Sue" in jana.text and "Tom" not in jana.text


def test_a_letter_whose_manager_stays_goes_and_others_are_untouched(rt, company, smtp):
    """The control: decided when the mail leaves, not when the notice is given. Tom's notice withdrawn before
    the sender runs, his letter goes; Sue, never on notice, is introduced to her own new customer meanwhile."""
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": ["jana@customer.example"], "main": True}])
    other = company.customer("Nordic Paper")
    write_contacts(rt, other, [{"name": "Per Olsen", "emails": ["per@other.example"], "main": True}])
    _move(rt, company, customer, "tom")
    _move(rt, company, other, "sue")
    with rt.db.session() as session:
        departure = departures.start_departure(rt, session, None, company.user(session, "tom"),
                                               last_day=days_from_today(20), successor=None, ctx=OFFICE)
        departures.withdraw(rt, session, None, departure, reason="Stays with the company after all", ctx=OFFICE)
    result = send(rt)
    assert (result.sent, result.withheld) == (2, 0)
    assert "Tom" in smtp.to("jana@customer.example")[0].text and "Sue" in smtp.to("per@other.example")[0].text
    with rt.db.session() as session:
        kinds = {row.kind for row in session.scalars(select(MailOutbox).where(
            MailOutbox.status == MailStatus.SENT))}
    assert str(Kind.CUSTOMER_LETTER) in kinds
