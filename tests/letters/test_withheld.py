"""A letter's mail still waiting in the outbox when the manager it introduces gives notice.

`vault letter reissue` and `vault mail retry` refuse a letter introducing an account manager on notice
(`owner_on_notice`), but the sender sent one still waiting as it was: the customer was introduced to a
leaver as their new account manager. The sender now withholds it when it comes due, as it withholds a request
to decide sent to someone on notice (`withheld`, with its reason), and the departure's handover still writes
the customer its letter about the successor. Before, a withheld letter's text was forgotten, so one withheld
while its manager was on notice could never go, even once the notice was withdrawn: it is now kept, and
`vault letter reissue` sends it with a fresh link once the reason no longer holds (never before).

A withheld letter goes again only through `vault letter reissue`, never `vault mail retry`: its link was made
for a mail that never left and may have run out during the notice; a re-issue gives it a fresh one for the
full `VAULT_LETTER_LINK_DAYS`, counted from the day it goes."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import func, select

from tests.departure.conftest import OFFICE, days_from_today, run_cli
from tests.letters.conftest import links, write_contacts
from tests.letters.test_repair import _move
from tests.mail.helpers import send
from vault.mail import Kind
from vault.models import AuditEvent, CustomerLetter, Departure, HandoverItem, MailStatus
from vault.models.mail import MailOutbox
from vault.services import departures, letters

LINK = re.compile(r"/letter/([A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43})")
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
        # Never sent, and why is kept; the address and text too, since the notice may yet be withdrawn (then
        # `vault letter reissue` sends it with a fresh link; `test_a_letter_withheld_...`).
        assert (mail.status, mail.sent_at) == (MailStatus.WITHHELD, None)
        assert mail.recipient in ADDRESSES and "/letter/" in mail.body_text
        assert "the account manager it introduces (tom) is on notice" in (mail.last_error or "")
    assert send(rt).claimed == 0  # withheld, not claimed again
    # Nor repaired while the notice holds: what it says does not hold.
    with rt.db.session() as session:
        letter_id = session.scalar(select(CustomerLetter.id).where(CustomerLetter.new_owner_id == company.ids["tom"])
                                   .order_by(CustomerLetter.id).limit(1))
    reissued = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert reissued.exit_code == 1
    assert (f"refused letter #{letter_id}: the account manager it introduces (tom) is on notice"
            in reissued.output)

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


def _one_letter(rt: Any, owner_id: int) -> tuple[int, int]:
    with rt.db.session() as session:
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.new_owner_id == owner_id))
        return letter.id, letter.outbox_id


def test_a_letter_withheld_while_its_manager_was_on_notice_is_reissued_once_the_notice_is_withdrawn(
        rt, company, smtp, tmp_path, app):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": ["jana@customer.example"], "main": True}])
    _move(rt, company, customer, "tom")
    with rt.db.session() as session:
        departure = departures.start_departure(rt, session, None, company.user(session, "tom"),
                                               last_day=days_from_today(20), successor=None, ctx=OFFICE)
        departure_id = departure.id
    assert send(rt).withheld == 1
    letter_id, mail_id = _one_letter(rt, company.ids["tom"])
    with rt.db.session() as session:
        mail = session.get(MailOutbox, mail_id)
        old_link = LINK.search(mail.body_text).group(1)  # type: ignore[union-attr]
        assert (mail.status, mail.recipient) == (MailStatus.WITHHELD, "jana@customer.example")
    status = run_cli(rt, tmp_path, "mail", "status")
    assert (f"withheld #{mail_id} •••@customer.example: letter #{letter_id}: the account manager it introduces "
            "(tom) is on notice") in status.output

    # While the notice holds, neither repair sends it, and neither changes anything.
    def state() -> tuple[Any, ...]:
        with rt.db.session() as session:
            row, letter = session.get(MailOutbox, mail_id), session.get(CustomerLetter, letter_id)
            return (row.status, row.recipient, row.body_text, letter.token_hash, letter.expires_at,
                    letter.outbox_id, session.scalar(select(func.count()).select_from(MailOutbox)))
    before = state()
    refused = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert refused.exit_code == 1 and "(tom) is on notice" in refused.output
    retried = run_cli(rt, tmp_path, "mail", "retry", str(mail_id))
    assert retried.exit_code == 1
    assert f"refused #{mail_id}: was withheld (letter #{letter_id}: the account manager" in retried.output
    assert f"`vault letter reissue {letter_id}`" in retried.output
    assert state() == before and send(rt).claimed == 0

    # Tom stays: the reason is gone. A retry still does not put the withheld mail back as it was; a re-issue
    # sends it with a fresh link.
    with rt.db.session() as session:
        departures.withdraw(rt, session, None, session.get(Departure, departure_id),
                            reason="Stays with the company after all", ctx=OFFICE)
    assert run_cli(rt, tmp_path, "mail", "retry", str(mail_id)).exit_code == 1
    assert state() == before
    done = run_cli(rt, tmp_path, "--operator", "maria", "letter", "reissue", str(letter_id))
    assert done.exit_code == 0, done.output
    assert send(rt).sent == 1
    [arrived] = smtp.to("jana@customer.example")
    new_link = LINK.search(arrived.text).group(1)  # type: ignore[union-attr]
    assert "Tom" in arrived.text and new_link != old_link and old_link not in arrived.text + arrived.html
    client = app.test_client()
    assert client.get(f"/letter/{old_link}").status_code == 404
    assert client.get(f"/letter/{new_link}").status_code == 200
    with rt.db.session() as session:
        old = session.get(MailOutbox, mail_id)
        assert (old.status, old.recipient, old.body_text) == (MailStatus.WITHHELD, "•••@customer.example", "")
        [record] = session.scalars(select(AuditEvent).where(AuditEvent.action == "letter:reissue",
                                                            AuditEvent.outcome == "allowed")).all()
    assert record.actor_name == "cli:maria" and record.outcome == "allowed"
    assert json.loads(record.detail)["previous_status"] == "withheld"
    # The old row cannot be retried or re-issued again.
    again = run_cli(rt, tmp_path, "mail", "retry", str(mail_id))
    assert again.exit_code == 1 and "its text is forgotten" in again.output


def test_a_letter_withheld_for_a_disabled_manager_goes_again_once_enabled(rt, company, smtp, tmp_path):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer, [{"name": "Jana Novak", "emails": ["jana@customer.example"], "main": True}])
    _move(rt, company, customer, "tom")
    with rt.db.session() as session:
        company.user(session, "tom").disabled = True
    assert send(rt).withheld == 1
    letter_id, _mail_id = _one_letter(rt, company.ids["tom"])
    refused = run_cli(rt, tmp_path, "letter", "reissue", str(letter_id))
    assert refused.exit_code == 1 and "can no longer sign in" in refused.output
    with rt.db.session() as session:
        company.user(session, "tom").disabled = False
    assert run_cli(rt, tmp_path, "letter", "reissue", str(letter_id)).exit_code == 0
    assert send(rt).sent == 1 and len(smtp.to("jana@customer.example")) == 1
