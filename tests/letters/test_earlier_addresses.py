"""The letter introducing a leaver's successor also goes to the addresses the customer's main contacts had
before the leaver changed them: a leaver who put their own mailbox in the record before notice would
otherwise be the only one told, and would learn the successor's name while the customer learned nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.departure.conftest import OFFICE, evening_policy
from tests.letters.conftest import links, write_contacts
from tests.mail.helpers import send
from vault import policy
from vault.models import ContactLogEntry, Customer, CustomerLetter, Departure, HandoverItem, MailOutbox
from vault.services import customers, departures, records
from vault.services.record_crypto import open_sealed, record_key

REAL = "jana@customer.example"
PRIVATE = "sam.private@mail-box.example"
JANA = {"name": "Jana Novak", "emails": [REAL], "language": "en"}
LOOKBACK = 30
MARK = "to the address before the leaver's edit"


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    """The letters' settings, with a departure report looking back `LOOKBACK` days."""
    return {**settings_overrides, "policy": {**evening_policy(), "departure": {"lookback_days": LOOKBACK}}}


def _edit(rt: Any, company: Any, who: str, customer_id: int, contacts: list[dict[str, Any]]) -> None:
    with rt.db.session() as session:
        records.edit(rt, session, company.user(session, who), session.get(Customer, customer_id),
                     {"contacts": contacts}, ctx=OFFICE)


def _notice(rt: Any, company: Any, successor: str | None = "sue") -> int:
    with rt.db.session() as session:
        today = departures.today(rt.settings)
        departure = departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, "sam"),
            last_day=today + timedelta(days=60), successor=company.user(session, successor) if successor else None,
            notice_date=today, ctx=OFFICE)
        return departure.id


def _letter_records(company: Any) -> list[dict[str, Any]]:
    return [json.loads(event.detail) for event in company.events("customer:letter")]


@pytest.fixture
def shop(rt: Any, company: Any) -> int:
    """Sam's customer, whose one main contact writes from the customer's own domain."""
    customer = company.customer("Novak Tools")
    write_contacts(rt, customer, [JANA])
    return customer


def test_a_leaver_s_own_mailbox_in_place_of_the_customer_s_does_not_keep_the_customer_from_hearing(
        rt, company, smtp, shop):
    _edit(rt, company, "sam", shop, [{**JANA, "emails": [PRIVATE]}])
    _notice(rt, company)
    send(rt)
    got = links(smtp)
    assert set(got) == {PRIVATE, REAL}
    assert got[PRIVATE] != got[REAL]  # a link of its own: the leaver cannot answer for the customer
    [letter] = smtp.to(REAL)
    assert "Sue" in letter.text and "Jana Novak" in letter.text
    # The audit log says which address was added and why, masked like every trace of a contact.
    [detail] = _letter_records(company)
    with rt.db.session() as session:
        made = {(ltr.earlier_address, ltr.contact_index): ltr for ltr in session.scalars(select(CustomerLetter))}
        # The outbox's keys: an earlier address's letter is `-1` as before the column said what it is.
        dedupe = {row.id: row.dedupe_key for row in session.scalars(select(MailOutbox))}
        keys = {place: dedupe[ltr.outbox_id].rsplit(":", 1)[0] for place, ltr in made.items()}
    sam = company.ids["sam"]
    assert sorted(made) == [(False, 0), (True, 1)]
    assert keys == {(False, 0): f"letter:{made[False, 0].change_key}:0",
                    (True, 1): f"letter:{made[True, 1].change_key}:-1"}
    assert detail["letters"] == [made[False, 0].id, made[True, 1].id]
    [earlier] = detail["earlier_addresses"]
    assert {k: earlier[k] for k in ("letter_id", "address", "why", "contact_index", "edited_by", "version")} == {
        "letter_id": made[True, 1].id, "address": "j•••@customer.example", "why": "address_changed",
        "contact_index": 0, "edited_by": sam, "version": 2}
    # Finding it opened the version before the leaver's edit and the edit itself: recorded.
    [read] = company.events("customer:contacts_system_read")
    assert json.loads(read.detail)["versions"] == [1, 2]
    # The customer's contact log (sealed) says so too.
    with rt.db.session() as session:
        key = record_key(rt, records.record_of(session, shop))
        topics = [open_sealed(key, shop, f"log:{entry.id}", entry.payload, {})["topic"]
                  for entry in session.scalars(select(ContactLogEntry).where(ContactLogEntry.customer_id == shop))]
    assert sorted(t.endswith("to an address the contact had before a leaver's edit") for t in topics) == [False, True]
    for event in company.events():
        assert REAL not in (event.detail or "") and PRIVATE not in (event.detail or "")


@pytest.mark.parametrize(("edited", "why"), [
    # The customer's address moved to second place, behind the leaver's: letters take the first.
    ([{**JANA, "emails": [PRIVATE, REAL]}], "address_changed"),
    # A contact of the leaver's own marked main, the customer's left unmarked behind it.
    ([{"name": "Sam Private", "emails": [PRIVATE], "main": True}, JANA], "no_longer_main"),
    # The customer's contact deleted whole, the leaver's own in its place.
    ([{"name": "Sam Private", "emails": [PRIVATE]}], "contact_removed"),
])
def test_every_way_of_taking_the_customer_s_address_out_of_the_letters_is_followed(
        rt, company, smtp, shop, edited, why):
    _edit(rt, company, "sam", shop, edited)
    _notice(rt, company)
    send(rt)
    assert set(links(smtp)) == {PRIVATE, REAL}
    assert [e["why"] for e in _letter_records(company)[0]["earlier_addresses"]] == [why]


def test_a_removed_main_contact_among_several_is_told_and_the_others_once_each(rt, company, smtp):
    customer = company.customer("Three Contacts")
    olga = {"name": "Olga Smirnova", "emails": ["olga@customer.example"], "language": "ru", "main": True}
    li = {"name": "Li Wei", "emails": ["li.wei@customer.example"], "language": "zh_Hans", "main": True}
    write_contacts(rt, customer, [{**JANA, "main": True}, olga, li])
    _edit(rt, company, "sam", customer, [{**JANA, "main": True}, li])  # Olga deleted
    _notice(rt, company)
    send(rt)
    assert sorted(m.recipients[0] for m in smtp.received if "/letter/" in m.text) == sorted(
        [REAL, "olga@customer.example", "li.wei@customer.example"])
    olga_mail = smtp.to("olga@customer.example")
    assert len(olga_mail) == 1 and "Olga Smirnova" in olga_mail[0].text
    assert olga_mail[0].message["Subject"].startswith("Ваш новый менеджер")  # in her own language, as before


def test_other_people_s_edits_stand_and_an_address_the_leaver_added_is_never_an_earlier_one(rt, company, smtp):
    customer = company.customer("Team Sold")
    write_contacts(rt, customer, [{**JANA, "emails": ["jana.old@customer.example"]}])
    with rt.db.session() as session:
        customers.add_co_owner(rt, session, None, session.get(Customer, customer), company.user(session, "tom"),
                               ctx=OFFICE)
    _edit(rt, company, "tom", customer, [JANA])  # the customer's new mailbox, told to Tom
    _edit(rt, company, "sam", customer, [JANA, {"name": "Sam Private", "emails": [PRIVATE], "main": True}])
    _edit(rt, company, "sam", customer, [{**JANA, "emails": ["jana.typo@customer.example"]}])  # and PRIVATE out
    _edit(rt, company, "tom", customer, [{**JANA, "emails": ["jana.fixed@customer.example"]}])
    _notice(rt, company)
    send(rt)
    # Tom's retirement of the old mailbox stands; the address Sam added and took out again is not written
    # to; the address Sam took out is, beside Tom's correction.
    assert set(links(smtp)) == {"jana.fixed@customer.example", REAL}


def test_an_address_changed_back_gets_one_letter(rt, company, smtp, shop):
    _edit(rt, company, "sam", shop, [{**JANA, "emails": [PRIVATE]}])
    _edit(rt, company, "sam", shop, [JANA])
    _edit(rt, company, "sam", shop, [{**JANA, "emails": [PRIVATE]}])
    _edit(rt, company, "sam", shop, [{**JANA, "emails": [REAL.upper()]}])  # the same mailbox, in capitals
    _notice(rt, company)
    send(rt)
    assert [m.recipients for m in smtp.received if "/letter/" in m.text] == [[REAL]]
    assert "earlier_addresses" not in _letter_records(company)[0]


def test_edits_by_people_who_are_not_leaving_change_nothing(rt, company, smtp, shop):
    """The product's own edit (and any other person's) is not doubted, and no version is opened."""
    write_contacts(rt, shop, [{**JANA, "emails": ["jana.new@customer.example"]}])
    _notice(rt, company)
    send(rt)
    assert set(links(smtp)) == {"jana.new@customer.example"}
    [read] = company.events("customer:contacts_system_read")
    assert "versions" not in json.loads(read.detail)


def test_the_window_is_the_report_s_look_back_counted_from_the_notice(rt, company, smtp, shop, clock):
    """Edits older than `[departure] lookback_days` before the notice stand (the report does not count
    them either); a letter sent late in the notice period still looks back from the notice, not from
    the day it is sent."""
    older = company.customer("Older Edit")
    write_contacts(rt, older, [{"name": "Otto Old", "emails": ["otto@older.example"]}])
    _edit(rt, company, "sam", older, [{"name": "Otto Old", "emails": ["otto.private@mail-box.example"]}])
    clock.advance(timedelta(days=LOOKBACK + 2))
    _edit(rt, company, "sam", shop, [{**JANA, "emails": [PRIVATE]}])
    clock.advance(timedelta(days=LOOKBACK - 5))
    departure = _notice(rt, company, successor=None)  # nobody named yet: no letter
    clock.advance(timedelta(days=20))  # the successor named late: the edit is now 45 days old
    with rt.db.session() as session:
        departures.update_departure(rt, session, company.user(session, "adm"), session.get(Departure, departure),
                                    successor=company.user(session, "sue"), ctx=OFFICE)
    send(rt)
    assert set(links(smtp)) == {PRIVATE, REAL, "otto.private@mail-box.example"}


def test_the_leaver_cannot_edit_after_notice_and_a_withdrawal_is_told_where_the_successor_was(
        rt, company, smtp, shop):
    _edit(rt, company, "sam", shop, [{**JANA, "emails": [PRIVATE]}])
    departure = _notice(rt, company)
    with pytest.raises(policy.Denied) as refused:
        _edit(rt, company, "sam", shop, [{**JANA, "emails": ["sam.other@mail-box.example"]}])
    assert refused.value.decision.code == "editor_departing"
    # The letters about Sue go before the withdrawal (one still waiting then is withheld: it would introduce
    # someone who no longer looks after the customer, `test_stale_waiting.py`).
    assert send(rt).withheld == 0
    with rt.db.session() as session:
        departures.withdraw(rt, session, company.user(session, "adm"), session.get(Departure, departure),
                            reason="Sam stays after all: the offer was withdrawn", ctx=OFFICE)
    send(rt)
    for address in (REAL, PRIVATE):
        assert ["Sue" in m.text for m in smtp.to(address)] == [True, False]  # the successor, then Sam stays


def test_the_customer_s_not_contacted_outweighs_the_leaver_s_contacted(rt, app, company, smtp):
    vip = company.customer("Vip Holdings", "vip")
    write_contacts(rt, vip, [JANA])
    _edit(rt, company, "sam", vip, [{**JANA, "emails": [PRIVATE]}])
    departure = _notice(rt, company)
    send(rt)
    got = links(smtp)
    for address, button in ((PRIVATE, "contacted"), (REAL, "not_contacted")):
        client = app.test_client()
        page = client.get(got[address])
        assert client.post(got[address], data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                                button: "1"}).status_code == 200
    with rt.db.session() as session:
        item = session.scalar(select(HandoverItem).where(HandoverItem.customer_id == vip))
        assert item.customer_answer == "not_contacted" and item.disputed
    # The handover status and the customer's page say which letter went to the earlier address.
    admin = app.test_client()
    login(admin, "adm")
    assert admin.get(f"/departures/{departure}").get_data(as_text=True).count(MARK) == 1
    sue = app.test_client()
    login(sue, "sue")
    assert sue.get(f"/customers/{vip}").get_data(as_text=True).count(MARK) == 1


@pytest.mark.parametrize("before_the_window", [
    [[JANA, {"name": "Sam Private", "emails": [PRIVATE], "main": True}]],
    # The record emptied first: what comes into an empty record is not the record's first contacts.
    [[], [{"name": "Sam Private", "emails": [PRIVATE], "main": True}]],
], ids=["added", "after_emptying"])
def test_an_address_the_leaver_added_before_the_window_and_took_out_inside_it_is_not_written_to(
        rt, company, smtp, shop, clock, before_the_window):
    """The leaver's own mailbox, put in long before notice (an edit that stands) and taken out again inside
    the window, is not the customer's earlier address: the successor's letter and its link do not go there."""
    for contacts in before_the_window:
        _edit(rt, company, "sam", shop, contacts)
    clock.advance(timedelta(days=LOOKBACK + 10))
    _edit(rt, company, "sam", shop, [JANA])
    _notice(rt, company)
    send(rt)
    assert set(links(smtp)) == {REAL}
    assert "earlier_addresses" not in _letter_records(company)[0]


def test_an_address_the_record_held_under_someone_else_s_edit_is_the_customer_s_whoever_added_it_back(
        rt, company, smtp, shop, clock):
    """The customer's old mailbox, retired by a colleague and put back by the leaver before the window: it
    was the customer's before the leaver touched it, so the leaver taking it out again inside the window
    does not keep the customer from hearing there."""
    old = "jana.old@customer.example"
    write_contacts(rt, shop, [JANA, {"name": "Jan Novak", "emails": [old], "main": True}])
    write_contacts(rt, shop, [JANA])
    _edit(rt, company, "sam", shop, [JANA, {"name": "Jan Novak", "emails": [old], "main": True}])
    clock.advance(timedelta(days=LOOKBACK + 10))
    _edit(rt, company, "sam", shop, [JANA])
    _notice(rt, company)
    send(rt)
    assert set(links(smtp)) == {REAL, old}
    assert [e["why"] for e in _letter_records(company)[0]["earlier_addresses"]] == ["contact_removed"]


def test_the_contacts_the_leaver_first_gave_the_record_are_the_customer_s(rt, company, smtp, clock):
    """A salesperson usually writes their own customer's contacts: the addresses the record was first given
    are the customer's whoever wrote them, or a leaver who set up the record could replace every address
    unseen."""
    customer = company.customer("Set Up By Sam")
    _edit(rt, company, "sam", customer, [JANA])
    clock.advance(timedelta(days=LOOKBACK + 10))
    _edit(rt, company, "sam", customer, [{**JANA, "emails": [PRIVATE]}])
    _notice(rt, company)
    send(rt)
    assert set(links(smtp)) == {PRIVATE, REAL}
