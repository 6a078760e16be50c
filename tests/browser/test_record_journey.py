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
from tests.browser.helpers import Cast, Person, message
from tests.browser.test_journeys import create_customer, fill_contact, log_contact, update_record
from tests.browser.test_phone_and_access import PHONE as PHONE_SIZE
from tests.browser.test_phone_and_access import _axe_source
from tests.fixtures.browser import VIEWPORT
from vault.models import AuditEvent, Role

pytestmark = pytest.mark.browser

PHONE = "+49 170 5550196"
EMAIL = "jana.novak@nordwind.example"
REASON = "Adding the new buyer after the visit"


def _reveals_left(n: int) -> str:
    return f"{n} reveal{'' if n == 1 else 's'} of this customer left"


def _reveal(person: Person, customer_id: int) -> Page:
    page = person.go(f"/customers/{customer_id}")
    form = page.locator("#reveal-form")
    form.get_by_label("Why you need the contacts and terms").fill(REASON)
    form.get_by_label("Where you are").fill("Head office")
    person.submit(form.get_by_role("button", name="Reveal"))
    expect(page.locator("#record .badge")).to_have_text("Revealed")
    return page


def test_the_owner_reveals_adds_a_contact_with_the_button_and_sees_it(
    vault: Vault, new_page: Callable[[], Page]
) -> None:
    """Contacts are edited as groups of labelled fields: masked, the editor shows none and says to reveal;
    revealed, it shows them with blank groups, and "Add another contact" (a static script, no inline code
    under the page's Content-Security-Policy) adds one more group, which is saved like the others."""
    cast = Cast(vault, new_page)
    cast.make("olaf", Role.BORROWER)
    carla = cast.enter("carla", Role.COMPILER)
    olaf = cast.window("olaf")
    olaf.sign_in()
    customer_id = create_customer(carla, "Nordwind Handel AG", segment="Ordinary", owner="olaf")
    update_record(olaf, customer_id, city="Hamburg",
                  contacts=[{"Full name": "Jana Novak", "Phones": PHONE, "E-mails": EMAIL}])

    page = olaf.go(f"/customers/{customer_id}")
    editor = page.locator("#record-edit")
    expect(editor).to_contain_text("Reveal the contacts to change them.")
    expect(editor.locator("fieldset.contact")).to_have_count(0)
    expect(editor.get_by_role("button", name="Add another contact")).to_have_count(0)

    page = _reveal(olaf, customer_id)
    editor = page.locator("#record-edit")
    groups = editor.locator("fieldset.contact")
    expect(groups).to_have_count(3)  # Jana and two blank groups
    expect(groups.nth(0).get_by_label("Full name", exact=True)).to_have_value("Jana Novak")
    olaf.shot("revealed-editor")
    # Every input named by its label, every group by its legend: axe finds nothing serious, on a phone too.
    page.set_viewport_size(PHONE_SIZE)
    assert page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    page.evaluate(_axe_source())
    found = page.evaluate("""async () => (await axe.run(document.getElementById('record-edit')))
        .violations.filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id)""")
    assert found == []
    page.set_viewport_size(VIEWPORT)
    editor.get_by_role("button", name="Add another contact").click()
    expect(groups).to_have_count(4)
    added = groups.nth(3)
    expect(added.locator("legend")).to_have_text("Contact 4")
    expect(added.get_by_label("Full name", exact=True)).to_be_focused()
    expect(added.get_by_label("Full name", exact=True)).to_have_value("")
    fill_contact(added, {"Full name": "Olga Smirnova", "Role": "Buyer", "E-mails": "olga@nordwind.example",
                         "Messaging": "telegram:@olga_nw", "Birthday": "1985-03-08"})
    added.get_by_label("Language of letters").select_option(label="Русский")
    added.get_by_label("Main contact").check()
    olaf.shot("contact-added")
    olaf.submit(editor.get_by_role("button", name="Save the record"))
    expect(message(page, "success")).to_contain_text("Record saved as version")
    expect(page.locator("#record")).to_contain_text("O••• S•••")

    page = _reveal(olaf, customer_id)
    contacts = page.locator("#record table.contacts")
    expect(contacts.locator("tbody tr")).to_have_count(2)
    expect(contacts.locator("tbody tr").nth(1)).to_contain_text("Olga Smirnova")
    expect(contacts.locator("tbody tr").nth(1)).to_contain_text("olga@nordwind.example")
    added = page.locator("#record-edit fieldset.contact").nth(1)
    expect(added.get_by_label("Language of letters")).to_have_value("ru")
    expect(added.get_by_label("Main contact")).to_be_checked()
    olaf.shot("contact-seen")
    cast.assert_clean()

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
                  contacts=[{"Full name": "Jana Novak", "Role": "Head of purchasing", "Phones": PHONE, "E-mails": EMAIL,
                             "Messaging": "telegram:@jnovak_nw", "Birthday": "1980-05-17",
                             "Preferences": "Mornings only"}],
                  terms={"payment": "30 days net", "discount": "7%"})
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
