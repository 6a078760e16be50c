"""The customer record in a real Chromium: the owner keeps it current and logs a visit; a colleague who does
not work the customer looks it up, sees it masked, reveals it with a reason and a place, and is refused
once their quota for the customer is spent."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import Vault
from tests.browser.helpers import Cast, message
from tests.browser.test_journeys import create_customer, log_contact, update_record
from vault.models import AuditEvent, Role

pytestmark = pytest.mark.browser

PHONE = "+49 170 5550196"
EMAIL = "jana.novak@nordwind.example"



def _reveals_left(n: int) -> str:
    return f"{n} reveal{'' if n == 1 else 's'} of this customer left"

def test_owner_keeps_the_record_and_a_colleague_reveals_it_within_the_quota(
    vault: Vault, new_page: Callable[[], Page]
) -> None:
    cast = Cast(vault, new_page)
    cast.make("olaf", Role.BORROWER)
    cast.make("cleo", Role.BORROWER)
    carla = cast.enter("carla", Role.COMPILER)
    olaf = cast.window("olaf")
    olaf.sign_in()
    cleo = cast.window("cleo")
    cleo.sign_in()
    customer_id = create_customer(carla, "Nordwind Handel AG", segment="VIP", owner="olaf")

    # The owner fills in the record and logs his visit.
    update_record(olaf, customer_id, city="Hamburg", industry="Wholesale",
                  contacts=f"Jana Novak | Head of purchasing | {PHONE} | {EMAIL} | telegram:@jnovak_nw | "
                           "1980-05-17 | Mornings only",
                  terms="payment: 30 days net\ndiscount: 7%")
    log_contact(olaf, customer_id, contact="Jana Novak", topic="Frame contract for next year", channel="visit")
    page = olaf.page
    expect(page.locator("#record")).to_contain_text("+49 ••• ••• 96")
    expect(page.locator("#record")).not_to_contain_text(PHONE)
    expect(page.locator("#contact-log")).to_contain_text("visit")
    olaf.shot("record-kept")

    # A colleague looks the customer up and finds it masked.
    page = cleo.go("/")
    cleo.menu("Customers")
    cleo.submit(cleo.main().get_by_role("link", name="Look up another customer"))
    page.get_by_label("Customer name").fill("Nordwind")
    cleo.submit(cleo.main().get_by_role("button", name="Look up"))
    cleo.submit(cleo.main().get_by_role("link", name="Nordwind Handel AG"))
    record = page.locator("#record")
    expect(record).to_contain_text("Hamburg")
    expect(record).to_contain_text("j•••@nordwind.example")
    expect(record).not_to_contain_text(EMAIL)
    expect(page.locator("#record-edit")).to_have_count(0)  # only the owner and co-owners edit
    cleo.shot("masked")

    # She reveals it with a reason and a place: three times (a VIP customer's quota), then she is refused.
    for left in (3, 2, 1):
        page = cleo.go(f"/customers/{customer_id}")
        form = page.locator("#reveal-form")
        expect(form).to_contain_text(_reveals_left(left))
        form.get_by_label("Why you need the contacts and terms").fill("Covering Olaf's customer during his leave")
        form.get_by_label("Where you are").fill("Head office")
        cleo.submit(form.get_by_role("button", name="Reveal"))
        expect(message(page, "success")).to_contain_text(_reveals_left(left - 1))
        expect(page.locator("#record")).to_contain_text(PHONE)
        expect(page.locator("#record")).to_contain_text("30 days net")
        cleo.shot(f"revealed-{left}")
    page = cleo.go(f"/customers/{customer_id}")
    form = page.locator("#reveal-form")
    expect(form).to_contain_text(_reveals_left(0))
    form.get_by_label("Why you need the contacts and terms").fill("One more look")
    form.get_by_label("Where you are").fill("Head office")
    cleo.submit(form.get_by_role("button", name="Reveal"))
    assert "reveals of this customer" in cleo.refusal()
    expect(page.get_by_text(PHONE)).to_have_count(0)
    cleo.shot("refused-at-quota")
    assert re.search(rf"/customers/{customer_id}/reveal$", page.url)

    with vault.rt.db.session() as session:
        reveals = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "customer:reveal")
                                       .order_by(AuditEvent.seq)))
    assert [(e.actor_name, e.outcome) for e in reveals] == [("cleo", "allowed")] * 3 + [("cleo", "denied")]
    cast.assert_clean()
