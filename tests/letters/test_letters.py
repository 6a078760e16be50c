"""Letters introducing a customer's new account manager: written for every change of owner, in each main
contact's language, delivered through the outbox to a real SMTP server, never twice for one change, and
never showing anything else of the customer's record."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.departure.conftest import OFFICE
from tests.letters.conftest import COMPANY, SECRET_NAME, SECRET_TERM, links, write_contacts
from tests.mail.helpers import send
from vault.core import events
from vault.models import AuditEvent, ContactLogEntry, Customer, CustomerLetter, MailOutbox, User, utcnow
from vault.pages.forms.records import RecordForm, submitted_contacts
from vault.services import customers, records


def _assign(rt: Any, company: Any, customer_id: int, to: str, by: str = "ann") -> None:
    with rt.db.session() as session:
        customers.set_owner(rt, session, company.user(session, by), session.get(Customer, customer_id),
                            company.user(session, to), ctx=OFFICE, reason="Territory change")


def _letters(rt: Any) -> list[CustomerLetter]:
    with rt.db.session() as session:
        return list(session.scalars(select(CustomerLetter).order_by(CustomerLetter.id)))


def test_each_main_contact_gets_one_letter_in_their_language(rt, company, smtp):
    customer = company.customer("Baltic Freight")
    write_contacts(rt, customer)
    _assign(rt, company, customer, "tom")
    result = send(rt)
    assert result.sent == 3
    by_recipient = {m.recipients[0]: m for m in smtp.received}
    assert set(by_recipient) == {"jana@customer.example", "li.wei@customer.example", "olga@customer.example"}

    english = by_recipient["jana@customer.example"]
    assert english.message["Subject"] == f"Your new account manager at {COMPANY}"
    assert "Dear Jana Novak," in english.text and "Tom" in english.text and "tom@nordwind.example" in english.text
    chinese = by_recipient["li.wei@customer.example"]
    assert chinese.message["Subject"] == f"您在 {COMPANY} 的新客户经理"
    assert "尊敬的 Li Wei" in chinese.text and "新客户经理" in chinese.html
    russian = by_recipient["olga@customer.example"]
    assert russian.message["Subject"] == f"Ваш новый менеджер по работе с клиентами в компании {COMPANY}"
    assert "Здравствуйте, Olga Smirnova!" in russian.text and "С уважением," in russian.text
    for message in smtp.received:
        for shown in (message.text, message.html):
            # Nothing else of the record: no other contact, no terms, not the customer's own name.
            assert SECRET_NAME not in shown and SECRET_TERM not in shown and "Baltic Freight" not in shown
            assert "Jana" not in shown or message is english

    letters = _letters(rt)
    assert [(ltr.language, ltr.cause, ltr.contact_index) for ltr in letters] == [
        ("en", "assignment", 0), ("zh_Hans", "assignment", 1), ("ru", "assignment", 2)]
    assert all(ltr.token_hash and len(ltr.token_hash) == 64 and ltr.outbox_id for ltr in letters)
    with rt.db.session() as session:
        # The link's hash alone is stored: the path in the mail is not in the letter row.
        assert all(links(smtp)[a].split("/")[-1] not in {ltr.token_hash for ltr in letters} for a in links(smtp))
        log = list(session.scalars(select(ContactLogEntry).where(ContactLogEntry.customer_id == customer)))
        assert [(e.channel, e.author_id, e.main_contact) for e in log] == [("letter", None, True)] * 3
        actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.customer_id == customer))]
    assert "customer:contacts_system_read" in actions and actions.count("customer:letter") == 1
    assert actions.count("customer:log") == 3


def test_no_letter_twice_for_one_change_nor_when_the_owner_stays(rt, company, smtp):
    customer = company.customer("Harbour Tools")
    write_contacts(rt, customer)
    _assign(rt, company, customer, "tom")
    with rt.db.session() as session:
        target = session.get(Customer, customer)
        tom = company.user(session, "tom")
        # The same change told again (a retried act, a second emitter): nothing more is written.
        events.emit("customer.owner_changed", session=session, rt=rt, customer=target,
                    previous_owner_id=company.ids["sam"], new_owner=tom, cause="assignment", actor=None, ctx=OFFICE)
        # No change at all.
        events.emit("customer.owner_changed", session=session, rt=rt, customer=target,
                    previous_owner_id=tom.id, new_owner=tom, cause="pool_assignment", actor=None, ctx=OFFICE)
    _assign(rt, company, customer, "tom")  # already the owner: no event, no letter
    assert len(_letters(rt)) == 3
    with rt.db.session() as session:
        assert session.query(MailOutbox).count() == 3


def test_main_contacts_default_to_the_first_and_to_the_company_language(rt, company, smtp):
    customer = company.customer("Quiet Mills")
    write_contacts(rt, customer, [{"name": "First Person", "emails": ["first@mills.example"]},
                                  {"name": SECRET_NAME, "emails": ["second@mills.example"]}])
    _assign(rt, company, customer, "tom")
    send(rt)
    assert [m.recipients[0] for m in smtp.received] == ["first@mills.example"]
    assert smtp.received[0].message["Subject"] == f"Your new account manager at {COMPANY}"


def test_a_customer_without_contacts_gets_no_letter_and_the_change_stands(rt, company, smtp):
    customer = company.customer("Blank Slate")
    _assign(rt, company, customer, "tom")
    assert _letters(rt) == []
    with rt.db.session() as session:
        assert session.get(Customer, customer).owner_id == company.ids["tom"]


def test_the_contact_language_and_main_mark_are_checked(rt, company):
    with pytest.raises(Exception, match="language"):
        records.clean_contact({"name": "X", "language": "klingon"}, "contacts[0]")
    with pytest.raises(Exception, match="main"):
        records.clean_contact({"name": "X", "main": "perhaps"}, "contacts[0]")
    assert records.clean_contact({"name": "X", "language": "zh-CN", "main": True}, "c")["language"] == "zh_Hans"
    assert "language" not in records.clean_contact({"name": "X"}, "c")
    with rt.db.session() as session:
        assert session.get(User, company.ids["tom"]) is not None


def test_a_letter_queued_while_the_server_is_down_is_retried_and_sent_once(rt, company, smtp):
    smtp.stop()
    customer = company.customer("Delta Ports")
    write_contacts(rt, customer)
    _assign(rt, company, customer, "tom")
    now = utcnow()
    first = send(rt, now)
    assert (first.sent, first.retrying) == (0, 3)
    assert send(rt, now).claimed == 0  # the back-off is respected
    smtp.start()  # the same port again
    later = now + timedelta(minutes=2)
    assert send(rt, later).sent == 3
    assert send(rt, later + timedelta(days=1)).claimed == 0
    assert sorted(m.recipients[0] for m in smtp.received) == [
        "jana@customer.example", "li.wei@customer.example", "olga@customer.example"]
    with rt.db.session() as session:
        rows = list(session.scalars(select(MailOutbox).where(MailOutbox.kind == "customer_letter")))
    assert {(row.status, row.attempts) for row in rows} == {("sent", 2)}


def test_the_record_form_carries_the_language_and_main_mark(app):
    """A contact's group of fields sends the language of letters and the main mark, and a revealed contact
    comes back into the group with both (a contact without them sends neither)."""
    typed = {"rec-contacts_edited": "1", "rec-contacts-0-name": "Li Wei",
             "rec-contacts-0-emails": "li.wei@customer.example", "rec-contacts-0-language": "zh_Hans",
             "rec-contacts-0-main": "y", "rec-contacts-1-name": "Old Style"}
    with app.test_request_context(method="POST", data=typed):
        form = RecordForm(prefix="rec", meta={"csrf": False})
        assert form.validate()
        sent = [kept.value for kept in submitted_contacts(form) or []]
    assert (sent[0]["language"], sent[0]["main"]) == ("zh_Hans", True)
    assert "language" not in sent[1] and "main" not in sent[1]
    cleaned = [records.clean_contact(contact, f"contacts[{i}]") for i, contact in enumerate(sent)]
    with app.test_request_context():
        shown = RecordForm(prefix="rec", formdata=None, meta={"csrf": False})
        shown.show_contacts(cleaned)
        assert (shown.contacts[0].language.data, shown.contacts[0].main.data) == ("zh_Hans", True)
        assert (shown.contacts[1].language.data, shown.contacts[1].main.data) == ("", False)


def test_an_owner_changed_on_the_customer_page_sends_the_letters_after_the_commit(rt, app, company, smtp):
    customer = company.customer("Pier Seven")
    write_contacts(rt, customer, [{"name": "Pia Seven", "emails": ["pia@pier.example"], "language": "zh_Hans"}])
    client = app.test_client()
    login(client, "ann")
    page = client.get(f"/customers/{customer}")
    moved = client.post(f"/customers/{customer}/owner", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "owner-owner": str(company.ids["tom"]),
        "owner-reason": "Territory change"})
    assert moved.status_code == 302
    deadline = time.monotonic() + 10
    while not smtp.received and time.monotonic() < deadline:
        time.sleep(0.05)  # the request's mail is tried in the background once the request committed
    [message] = smtp.received
    assert message.recipients == ["pia@pier.example"] and "新客户经理" in message.message["Subject"]
    owner = app.test_client()
    login(owner, "tom")
    shown = owner.get(f"/customers/{customer}").get_data(as_text=True)
    assert "Letters about the account manager" in shown and "P••• S•••" in shown and "pia@pier" not in shown
