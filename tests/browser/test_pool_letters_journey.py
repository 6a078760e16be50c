"""A leaver's customers stay with the company, in a real Chromium: one goes to the successor, the other
back to the shared pool where a colleague claims it; the customer of the first gets a letter (in its main
contact's language, over a real SMTP server) introducing the successor, confirms through the letter's
link without any account, and the departure completes.

- admin (Ines) starts Lea's departure with Sam as successor, then sends Orchard Ltd back to the pool
  from the departure page;
- the letter about Sam reaches Lambert SA's main contact in Russian; its link opens a page that names
  the new manager and nothing of the record; the contact answers "contacted";
- the departure page shows the customer's answer; Bruno finds Orchard Ltd in the pool and claims it;
- Ines completes the departure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import LiveServer, Vault
from tests.browser.helpers import Cast, message
from tests.mail.smtpd import Received, SmtpServer
from tests.support.factories import make_customer
from vault.core.context import AccessContext
from vault.mail import send_pending, transport_for
from vault.models import Customer, CustomerLetter, Departure, Role, User, utcnow
from vault.services import departures, records

pytestmark = pytest.mark.browser

CONTACT = "olga.smirnova@lambert.example"
SECRET_TERM = "Rebate 7 % on volumes over 40 t"
MAIL_WAIT_S = 10.0


def user_id(vault: Vault, name: str) -> int:
    with vault.rt.db.session() as session:
        return session.scalars(select(User.id).where(User.username == name)).one()


def the_letter(vault: Vault, smtp: SmtpServer) -> Received:
    """The one letter the contact received, after the outbox has been sent (what cron does)."""
    deadline = time.monotonic() + MAIL_WAIT_S
    while True:
        send_pending(vault.rt.db, transport_for(vault.rt.settings), utcnow())
        got = smtp.to(CONTACT)
        if got or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(got) == 1, [r.message["Subject"] for r in got]
    return got[0]


def test_a_leavers_customers_go_to_the_successor_and_the_pool_and_the_customer_confirms(
    live_server: LiveServer, open_vault: Callable[..., Vault], new_page: Callable[[], Page]
) -> None:
    smtp = SmtpServer().start()
    try:
        _journey(live_server.base, open_vault, new_page, smtp)
    finally:
        smtp.stop()


def _journey(base: str, open_vault: Callable[..., Vault], new_page: Callable[[], Page], smtp: SmtpServer) -> None:
    vault = open_vault(smtp_url=smtp.url(timeout="5"), mail_from="vault@example.com", base_url=base,
                       company_name="Nordwind Trading")
    cast = Cast(vault, new_page)
    for name, roles in {"lea": (Role.BORROWER,), "sam": (Role.BORROWER,), "bruno": (Role.BORROWER,),
                        "ines": (Role.ADMIN,)}.items():
        cast.make(name, *roles)
    with vault.rt.db.session() as session:
        sam = session.get(User, user_id(vault, "sam"))
        sam.email = "sam@nordwind.example"
        lambert = make_customer(session, owner_id=user_id(vault, "lea"), name="Lambert SA")
        orchard = make_customer(session, owner_id=user_id(vault, "lea"), name="Orchard Ltd")
        session.flush()
        records.edit(vault.rt, session, None, lambert, {
            "contacts": [{"name": "Olga Smirnova", "emails": [CONTACT], "language": "ru", "main": True},
                         {"name": "Piotr Zielinski", "emails": ["piotr@lambert.example"]}],
            "terms": {"rebate": SECRET_TERM}}, ctx=AccessContext.cli())
        session.commit()
        lambert_id, orchard_id = lambert.id, orchard.id
        departure_id = departures.start_departure(
            vault.rt, session, None, session.get(User, user_id(vault, "lea")),
            last_day=utcnow().date() + timedelta(days=14), successor=sam, ctx=AccessContext.cli()).id
        session.commit()

    # -- the admin sends Orchard Ltd back to the shared pool from the departure page ---------------------
    ines = cast.window("ines")
    ines.sign_in()
    page = ines.go(f"/departures/{departure_id}")
    row = page.locator("tr", has_text="Orchard Ltd")
    row.locator("select[name=to_user]").select_option(label="Return to the shared pool")
    ines.submit(row.get_by_role("button", name="Reassign"))
    expect(page.locator("tr", has_text="Orchard Ltd")).to_contain_text("Shared pool")
    ines.shot("returned-to-pool")
    with vault.rt.db.session() as session:
        assert session.get(Customer, orchard_id).owner_id is None
        assert session.get(Customer, lambert_id).owner_id == user_id(vault, "sam")

    # -- Lambert's main contact reads the letter, in Russian, and confirms through its link -------------
    letter = the_letter(vault, smtp)
    assert letter.message["Subject"] == "Ваш новый менеджер по работе с клиентами в компании Nordwind Trading"
    assert "Здравствуйте, Olga Smirnova!" in letter.text and "Sam" in letter.text
    for shown in (letter.text, letter.html):
        assert "Piotr" not in shown and SECRET_TERM not in shown and "Lambert SA" not in shown
    links = re.findall(r"https?://\S+/letter/\S+", letter.text)
    assert len(links) == 1 and f'href="{links[0]}"' in letter.html, links
    customer = cast.window("olga")  # no account, no sign-in: the link is all she has
    customer.page.goto(links[0])
    link_page = customer.page
    expect(link_page.locator("html")).to_have_attribute("lang", "ru")
    body = link_page.locator("body").inner_text()
    assert "Sam" in body and "Nordwind Trading" in body
    assert "Lambert SA" not in body and "Piotr" not in body and "Olga" not in body and SECRET_TERM not in body
    customer.shot("letter-link")
    customer.submit(link_page.locator('[name="contacted"]'))
    expect(link_page.locator("main")).to_contain_text("Спасибо")
    customer.shot("letter-answered")
    customer.page.goto(links[0])  # the link works once
    expect(customer.page.locator("main")).to_contain_text("уже использована")
    with vault.rt.db.session() as session:
        answered = session.scalars(select(CustomerLetter).where(CustomerLetter.customer_id == lambert_id)).one()
        assert answered.answer == "contacted"

    # -- the departure page shows the answer; a colleague claims the pooled customer --------------------
    page = ines.go(f"/departures/{departure_id}")
    expect(page.locator("tr", has_text="Lambert SA")).to_contain_text("contacted")
    bruno = cast.window("bruno")
    bruno.sign_in()
    page = bruno.go("/pool/")
    bruno.shot("pool")
    bruno.submit(page.get_by_role("button", name="Claim Orchard Ltd"))
    expect(message(page, "success")).to_be_visible()
    with vault.rt.db.session() as session:
        assert session.get(Customer, orchard_id).owner_id == user_id(vault, "bruno")

    # -- the admin completes the departure ---------------------------------------------------------------
    page = ines.go(f"/departures/{departure_id}")
    page.locator("#complete-confirm").check()
    ines.submit(page.get_by_role("button", name="Complete the departure"))
    expect(message(page, "success")).to_be_visible()
    ines.shot("departure-completed")
    with vault.rt.db.session() as session:
        assert session.get(Departure, departure_id).completed_at is not None
    cast.assert_clean()
