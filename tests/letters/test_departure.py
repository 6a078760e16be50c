"""Letters at a departure: the leaver's customers are told who their new manager is, their answers show in
the handover status, and a key customer's "not contacted" stops the departure until the successor has
confirmed contact and an approver waives it with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.departure.conftest import OFFICE, days_from_today
from tests.letters.conftest import links, write_contacts
from tests.mail.helpers import send
from tests.support.factories import reach_main_contact
from vault import policy
from vault.models import CustomerLetter, Departure, HandoverItem
from vault.services import departures, todo

REASON = "Sue met the buyer on site after the letter; the answer predates it"


@pytest.fixture
def notice(rt: Any, company: Any, smtp: Any) -> dict[str, Any]:
    """Sam leaves; Sue takes a VIP customer and an ordinary one, each with one main contact."""
    vip = company.customer("Vip Holdings", "vip")
    plain = company.customer("Plain Shop")
    write_contacts(rt, vip, [{"name": "Vera Key", "emails": ["vera@vip.example"], "language": "ru"}])
    write_contacts(rt, plain, [{"name": "Paul Plain", "emails": ["paul@plain.example"]}])
    with rt.db.session() as session:
        departure = departures.start_departure(
            rt, session, company.user(session, "adm"), company.user(session, "sam"), last_day=days_from_today(10),
            successor=company.user(session, "sue"), notice_date=days_from_today(-1), ctx=OFFICE)
        items = {item.customer_id: item.id for item in departure.items}
    send(rt)
    return {"departure": departure.id, "vip": vip, "plain": plain, "items": items, "links": links(smtp)}


def _answer(client: Any, path: str, button: str) -> None:
    page = client.get(path)
    answered = client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True)), button: "1"})
    assert answered.status_code == 200


def _confirm(rt: Any, company: Any, notice: dict[str, Any]) -> None:
    reach_main_contact(rt, notice["vip"], "sue")
    with rt.db.session() as session:
        departures.confirm_contact(rt, session, company.user(session, "sue"),
                                   session.get(HandoverItem, notice["items"][notice["vip"]]),
                                   contact_date=days_from_today(0), note="Visited the buyer, introduced myself",
                                   ctx=OFFICE)


def _complete(rt: Any, company: Any) -> Departure:
    with rt.db.session() as session:
        return departures.complete(rt, session, company.user(session, "adm"), session.scalar(select(Departure)),
                                   ctx=OFFICE)


def test_each_handed_over_customer_gets_a_letter_tied_to_its_item(rt, company, notice, smtp):
    assert set(notice["links"]) == {"vera@vip.example", "paul@plain.example"}
    vera = next(m for m in smtp.received if m.recipients == ["vera@vip.example"])
    assert vera.message["Subject"].startswith("Ваш новый менеджер") and "Sue" in vera.text
    with rt.db.session() as session:
        letters = {ltr.customer_id: ltr for ltr in session.scalars(select(CustomerLetter))}
    assert {cid: (ltr.cause, ltr.handover_item_id, ltr.new_owner_id) for cid, ltr in letters.items()} == {
        cid: ("handover", notice["items"][cid], company.ids["sue"]) for cid in (notice["vip"], notice["plain"])}


def test_a_vip_saying_not_contacted_stops_the_departure_until_an_approver_waives_it(rt, app, company, notice):
    customer_client = app.test_client()
    _answer(customer_client, notice["links"]["vera@vip.example"], "not_contacted")
    _answer(customer_client, notice["links"]["paul@plain.example"], "contacted")
    _confirm(rt, company, notice)  # the successor's own word does not outweigh the customer's
    with rt.db.session() as session:
        item = session.get(HandoverItem, notice["items"][notice["vip"]])
        assert item.customer_answer == "not_contacted" and item.disputed and item.confirmed
    with pytest.raises(policy.Denied) as refused:
        _complete(rt, company)
    assert refused.value.decision.code == "customer_not_contacted"

    # Through the pages: the refusal names the problem and the next step; the status shows the answers.
    admin = app.test_client()
    login(admin, "adm")
    page = admin.get(f"/departures/{notice['departure']}")
    html = page.get_data(as_text=True)
    assert "customer says not contacted" in html and "no answer yet" not in html
    refused_page = admin.post(f"/departures/{notice['departure']}/complete",
                              data={"csrf_token": csrf_from(html), "confirm": "y"})
    assert refused_page.status_code == 403
    text = refused_page.get_data(as_text=True)
    assert "A key customer says nobody has contacted them" in text
    assert f"/departures/{notice['departure']}" in text

    approver = app.test_client()
    login(approver, "ann")
    override_page = approver.get(f"/departures/{notice['departure']}/override").get_data(as_text=True)
    assert "Vip Holdings" in override_page and "customer says not contacted" in override_page
    with rt.db.session() as session:
        # The successor sees the customer on their to-do list again, though they confirmed it.
        assert notice["items"][notice["vip"]] in [i.id for i in todo._handovers(session, company.user(session, "sue"))]
        # The successor cannot waive the customer's answer about themselves; an approver can, with a reason.
        with pytest.raises(policy.Denied) as own:
            departures.override(rt, session, company.user(session, "sue"), session.get(Departure, notice["departure"]),
                                reason=REASON, ctx=OFFICE)
        assert own.value.decision.code in {"not_permitted", "separation_of_duties"}
        waived = departures.override(rt, session, company.user(session, "ann"),
                                     session.get(Departure, notice["departure"]), reason=REASON, ctx=OFFICE)
        assert [i.customer_id for i in waived] == [notice["vip"]]
    (event,) = company.events("departure:override")
    assert json.loads(event.detail)["not_contacted"] == [notice["items"][notice["vip"]]]
    assert event.reason_text == REASON
    assert _complete(rt, company).status == "completed"


def test_a_vip_confirming_contact_does_not_block(rt, app, company, notice):
    _answer(app.test_client(), notice["links"]["vera@vip.example"], "contacted")
    _confirm(rt, company, notice)
    assert _complete(rt, company).status == "completed"


def test_a_new_successor_starts_without_the_old_answer(rt, app, company, notice):
    _answer(app.test_client(), notice["links"]["vera@vip.example"], "not_contacted")
    with rt.db.session() as session:
        item = session.get(HandoverItem, notice["items"][notice["vip"]])
        departures.reassign(rt, session, company.user(session, "adm"), item, company.user(session, "tom"), ctx=OFFICE)
        assert item.customer_answer is None and not item.disputed
        letters = session.scalars(select(CustomerLetter).where(CustomerLetter.new_owner_id == company.ids["tom"]))
        assert [ltr.handover_item_id for ltr in letters] == [item.id]


def test_a_withdrawn_notice_tells_the_customers_their_manager_stays(rt, company, smtp, notice):
    """The customers were told of the successor; when the notice is withdrawn they are told, by a letter of
    the same kind, that the one who was leaving is their manager again."""
    assert set(notice["links"]) == {"vera@vip.example", "paul@plain.example"}
    with rt.db.session() as session:
        departures.withdraw(rt, session, company.user(session, "adm"), session.scalar(select(Departure)),
                            reason="Sam stays after all: the offer was withdrawn", ctx=OFFICE)
        session.commit()
    send(rt)
    for address in ("vera@vip.example", "paul@plain.example"):
        got = smtp.to(address)
        assert len(got) == 2, [m.message["Subject"] for m in got]
        assert "Sam" in got[-1].text and "Sue" not in got[-1].text
    assert "Здравствуйте, Vera Key!" in smtp.to("vera@vip.example")[-1].text
    with rt.db.session() as session:
        made = session.scalars(select(CustomerLetter).order_by(CustomerLetter.id)).all()
        assert [letter.cause for letter in made] == ["handover", "handover", "withdrawal", "withdrawal"]
        assert all(letter.handover_item_id is None for letter in made)  # the departure and its items are gone
