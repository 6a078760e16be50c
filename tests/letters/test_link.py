"""The link in a customer's letter: answered once without signing in, refused cleanly when used, expired,
revoked or forged, paused per address after many bad links, and showing nothing of the customer's record."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.departure.conftest import OFFICE
from tests.letters.conftest import COMPANY, CONTACTS, SECRET_NAME, SECRET_TERM, links, write_contacts
from tests.mail.helpers import send
from tests.security.helpers import without_csrf
from tests.support.locks import meanwhile
from vault import policy
from vault.core.actions import Action
from vault.mail.letters import LINK_PATH
from vault.models import AuditEvent, ContactLogEntry, Customer, CustomerLetter
from vault.services import customers, letters, records

CUSTOMER = "Baltic Freight"


@pytest.fixture
def sent(rt: Any, company: Any, smtp: Any) -> dict[str, Any]:
    """Tom took over Baltic Freight; the three main contacts have their letters."""
    customer = company.customer(CUSTOMER)
    write_contacts(rt, customer)
    with rt.db.session() as session:
        customers.set_owner(rt, session, company.user(session, "ann"), session.get(Customer, customer),
                            company.user(session, "tom"), ctx=OFFICE)
    send(rt)
    return {"customer": customer, "links": links(smtp)}


def _answer(client: Any, path: str, button: str = "contacted", comment: str = "") -> Any:
    page = client.get(path)
    assert page.status_code == 200
    return client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True)), button: "1",
                                   "comment": comment})


def _actions(rt: Any, action: str) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_the_route_is_the_one_the_letter_links_to(app):
    assert any(rule.rule == LINK_PATH.replace("{link}", "<string(maxlength=100):link>")
               for rule in app.url_map.iter_rules())


def test_the_page_shows_the_company_and_manager_and_nothing_of_the_record(rt, company, client, sent):
    page = client.get(sent["links"]["jana@customer.example"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert COMPANY in html and "Tom" in html and 'lang="en"' in html
    for secret in [c["name"] for c in CONTACTS] + [SECRET_TERM, CUSTOMER, "+49 30", "customer.example"]:
        assert secret not in html, secret
    # Each contact reads it in their letter's language, whatever the browser asks for.
    chinese = client.get(sent["links"]["li.wei@customer.example"], headers={"Accept-Language": "ru"})
    assert "您的新客户经理" in chinese.get_data(as_text=True) and 'lang="zh-Hans"' in chinese.get_data(as_text=True)


def test_the_link_works_once_and_records_the_answer(rt, company, client, sent):
    path = sent["links"]["olga@customer.example"]
    answered = _answer(client, path, "not_contacted", "Nobody called yet")
    assert answered.status_code == 200
    assert "попросим менеджера" in answered.get_data(as_text=True)
    again = client.get(path)
    assert again.status_code == 410
    assert client.post(path, data={"csrf_token": "x", "contacted": "1"}).status_code in (400, 410)
    with rt.db.session() as session:
        letter = session.scalar(select(CustomerLetter).where(CustomerLetter.answered_at.is_not(None)))
        assert (letter.answer, letter.language) == ("not_contacted", "ru")
        customer = session.get(Customer, sent["customer"])
        log = records._log_lines(rt, session, records.record_of(session, customer.id), customer.id, reveal=True)
    answer_line = next(line for line in log if "Answer to the letter" in line.topic)
    assert answer_line.channel == "letter" and answer_line.result == "Nobody called yet"
    assert "not been contacted" in answer_line.topic
    events = _actions(rt, "letter:answer")
    assert [(e.actor_id, e.customer_id, json.loads(e.detail)["answer"]) for e in events] == [
        (None, sent["customer"], "not_contacted")]
    assert [e.reason_code for e in _actions(rt, "letter:link_refused")] == ["used"]


def test_a_comment_is_length_limited_and_nothing_is_spent(rt, company, client, sent):
    path = sent["links"]["jana@customer.example"]
    page = client.get(path)
    refused = client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True)), "contacted": "1",
                                      "comment": "x" * (letters.MAX_COMMENT + 1)})
    assert refused.status_code == 200 and _actions(rt, "letter:answer") == []
    assert _answer(client, path).status_code == 200


def test_an_expired_link_is_refused(rt, company, client, sent, clock):
    clock.advance(timedelta(days=15))  # the runtime's links last 14 days
    path = sent["links"]["jana@customer.example"]
    page = client.get(path)
    assert page.status_code == 410 and "expired" in page.get_data(as_text=True)
    assert [e.reason_code for e in _actions(rt, "letter:link_refused")] == ["expired"]


def test_a_revoked_link_is_refused_and_only_the_right_people_revoke(rt, company, client, sent):
    with rt.db.session() as session:
        letter = session.scalars(select(CustomerLetter).order_by(CustomerLetter.id)).first()
        # carl entered the customer and sees it; sue does not see it at all, so the letter is not found
        for stranger, code in (("sue", "not_found"), ("carl", "not_letter_owner")):
            with pytest.raises(policy.Denied) as refused:
                letters.revoke(rt, session, company.user(session, stranger), letter, ctx=OFFICE)
            assert refused.value.decision.code == code
        letters.revoke(rt, session, company.user(session, "tom"), letter, ctx=OFFICE)
    page = client.get(sent["links"]["jana@customer.example"])
    assert page.status_code == 410 and "withdrawn" in page.get_data(as_text=True)
    with rt.db.session() as session:
        letter = session.scalars(select(CustomerLetter).order_by(CustomerLetter.id)).first()
        with pytest.raises(policy.Denied) as closed:
            letters.revoke(rt, session, company.user(session, "adm"), letter, ctx=OFFICE)
        assert closed.value.decision.code == "letter_closed"
    assert [e.actor_id for e in _actions(rt, "letter:revoke")] == [company.ids["tom"]]


def test_the_new_owner_revokes_from_the_customer_page(rt, company, client, sent):
    login(client, "tom")
    page = client.get(f"/customers/{sent['customer']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "/letters/" in html
    with rt.db.session() as session:
        letter_id = session.scalars(select(CustomerLetter.id).order_by(CustomerLetter.id)).first()
    done = client.post(f"/letters/{letter_id}/revoke", data={"csrf_token": csrf_from(html)})
    assert done.status_code == 302
    with rt.db.session() as session:
        assert session.get(CustomerLetter, letter_id).revoked_at is not None


@pytest.mark.parametrize("mangle", [
    lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),  # the signature altered
    lambda p: p.replace("/letter/", "/letter/x", 1)[:-1],  # the secret altered
    lambda p: "/letter/" + "a" * 32 + "." + "b" * 43,  # well-formed, never issued
    lambda p: "/letter/not-a-link",
])
def test_a_forged_or_altered_link_is_refused(rt, company, client, sent, mangle):
    path = mangle(sent["links"]["jana@customer.example"])
    page = client.get(path)
    assert page.status_code == 404 and "not valid" in page.get_data(as_text=True)
    assert client.post(path, data={"contacted": "1"}).status_code in (400, 404)
    assert _actions(rt, "letter:answer") == []


def test_many_bad_links_pause_the_address(rt, company, client, sent):
    limit = rt.settings.login_address_max_failures
    for i in range(limit):
        assert client.get(f"/letter/{'a' * 31}{i % 10}.{'b' * 43}").status_code == 404
    assert client.get(sent["links"]["jana@customer.example"]).status_code == 429
    other = client.application.test_client()
    assert other.get(sent["links"]["jana@customer.example"], environ_base={"REMOTE_ADDR": "192.0.2.7"}
                     ).status_code == 200


def test_the_contact_log_shows_the_letter_entries_without_an_author(rt, company, sent):
    with rt.db.session() as session:
        entries = list(session.scalars(select(ContactLogEntry).where(
            ContactLogEntry.customer_id == sent["customer"])))
    assert len(entries) == 3 and all(e.author_id is None for e in entries)
    assert SECRET_NAME  # the fourth contact is not a main one: no entry, no letter


def test_of_two_answers_racing_only_one_is_recorded(rt, company, sent, db_backend):
    """Both sessions find the link open; the one that writes second finds it spent and is refused."""
    if db_backend == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time (BEGIN IMMEDIATE): no two answers overlap")
    path = sent["links"]["jana@customer.example"]
    link = path.rsplit("/", 1)[-1]
    with rt.db.session() as first, rt.db.session() as second:
        letters.open_link(rt, first, link)
        letters.open_link(rt, second, link)
        letters.answer(rt, first, link, "contacted", "", ctx=OFFICE)
        first.commit()
        with pytest.raises(letters.LinkRefused) as refused:
            letters.answer(rt, second, link, "not_contacted", "", ctx=OFFICE)
        assert refused.value.code == "used"
        second.rollback()
    with rt.db.session() as session:
        answered = session.scalars(select(CustomerLetter).where(CustomerLetter.answered_at.is_not(None))).all()
    assert [ltr.answer for ltr in answered] == ["contacted"]
    assert len(_actions(rt, "letter:answer")) == 1


def test_without_a_public_address_the_letter_has_no_link(rt, company, smtp):
    object.__setattr__(rt.settings, "base_url", "")
    customer = company.customer("Inland Depot")
    write_contacts(rt, customer, [{"name": "Ina Land", "emails": ["ina@depot.example"]}])
    with rt.db.session() as session:
        customers.set_owner(rt, session, company.user(session, "ann"), session.get(Customer, customer),
                            company.user(session, "tom"), ctx=OFFICE)
    send(rt)
    [message] = smtp.received
    assert "/letter/" not in message.text and "/letter/" not in message.html
    assert "Tom" in message.text and "Kind regards," in message.text


def test_revoking_a_letter_of_a_customer_one_does_not_see_is_the_page_of_a_missing_one(rt, company, client, sent):
    """The revoke button's address carries the letter's id: someone who may not see its customer (sue works
    other customers) gets the very page a made-up id gets, not a 403 that says the letter exists; the
    refusal is recorded with the customer it was about. Carl, who entered the customer and sees it, keeps
    the 403 that says why."""
    with rt.db.session() as session:
        letter_id = session.scalars(select(CustomerLetter.id).order_by(CustomerLetter.id)).first()
        assert not policy.authorize(company.user(session, "sue"), Action.CUSTOMER_READ,
                                    session.get(Customer, sent["customer"]))
    token = login(client, "sue")
    hidden = client.post(f"/letters/{letter_id}/revoke", data={"csrf_token": token})
    missing = client.post("/letters/999999/revoke", data={"csrf_token": token})
    assert (hidden.status_code, missing.status_code) == (404, 404)
    # The same page but for the sign-out form's token, which carries the second it was made in.
    assert without_csrf(hidden.get_data(as_text=True)) == without_csrf(missing.get_data(as_text=True))
    assert CUSTOMER not in hidden.get_data(as_text=True) and str(sent["customer"]) not in hidden.headers.get(
        "Location", "")
    refused = [(e.actor_name, e.reason_code, e.customer_id) for e in _actions(rt, "letter:revoke")]
    assert refused == [("sue", "not_found", sent["customer"]), ("sue", "not_found", None)]
    with rt.db.session() as session:
        assert session.get(CustomerLetter, letter_id).revoked_at is None
        with pytest.raises(policy.Denied) as seen:
            letters.revoke(rt, session, company.user(session, "carl"), session.get(CustomerLetter, letter_id),
                           ctx=OFFICE)
        assert seen.value.decision.code == "not_letter_owner"


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_two_revocations_at_once_are_one(rt, company, sent, db_backend):
    """Tom and an administrator revoked the same letter at once: the second read it open, waited for the
    first's write, then revoked it again (two `letter:revoke` records). The letter is now read locked: the
    second is refused as closed."""
    with rt.db.session() as session:
        letter_id = session.scalars(select(CustomerLetter.id).order_by(CustomerLetter.id)).first()
    outcome: list[str] = []

    def administrator() -> None:
        with rt.db.session() as session:
            letter = session.get(CustomerLetter, letter_id)
            assert letter.revoked_at is None  # read before the wait
            try:
                letters.revoke(rt, session, company.user(session, "adm"), letter, ctx=OFFICE)
                outcome.append("revoked")
            except policy.Denied as exc:
                outcome.append(exc.decision.code)

    meanwhile(rt, lambda session: letters.revoke(rt, session, company.user(session, "tom"),
                                                 session.get(CustomerLetter, letter_id), ctx=OFFICE), administrator)
    assert outcome == ["letter_closed"]
    assert [e.actor_id for e in _actions(rt, "letter:revoke")] == [company.ids["tom"]]
