"""The viewer in a real Chromium: a multi-page grade-3 file read in the office, page by page, with the
banner, no download control, and Back and reload that never spend a second view. Screenshots are kept."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Vault
from tests.browser.helpers import Cast, message
from tests.browser.test_journeys import (
    approve,
    create_customer,
    find_document,
    open_view,
    request_loan,
    shown_pages,
    upload,
)
from tests.rendering.inputs import pdf_bytes
from vault.models import Role

pytestmark = pytest.mark.browser
PAGES = 5


def test_a_grade_3_document_is_read_in_the_viewer_and_never_carried_away(
    open_vault: Callable[..., Vault], new_page: Callable[[], Page], tmp_path: Path
) -> None:
    vault = open_vault(trusted_places="Office=127.0.0.0/8")
    cast = Cast(vault, new_page)
    carla = cast.enter("carla", Role.COMPILER)
    cora = cast.enter("cora", Role.CUSTODIAN)
    bruno = cast.enter("bruno", Role.BORROWER)
    alice = cast.enter("alice", Role.APPROVER)

    file = tmp_path / "tender-terms.pdf"
    file.write_bytes(pdf_bytes(PAGES))
    customer_id = create_customer(carla, "Nordic Freight", segment="Key account")
    document_id = upload(carla, customer_id, "Tender terms", 3, file, custodian="cora")
    assert find_document(bruno, "Nordic Freight", "Tender terms") == document_id  # a look-up: need to know
    loan_id = request_loan(bruno, document_id, "Preparing the tender answer due on Friday", days=2, place="Office")
    approve(alice, loan_id, "Tender terms", "Needed for the tender")
    page = cora.go("/")
    cora.menu("Custody")
    row = page.locator("table.releases tr", has_text="Tender terms")
    row.get_by_label("I have read the reason").check()  # the server checks the box too
    cora.submit(row.get_by_role("button", name="Release"))
    expect(message(page, "success")).to_have_text("The loan is released; its days start now.")

    viewer = open_view(bruno, document_id, left_before=3, limit=3)
    page = bruno.page
    expect(page.locator("#grade-banner")).to_have_text("CONFIDENTIAL — GRADE 3")
    expect(page.locator("#window-ends")).to_contain_text("This view closes at")
    expect(page.locator("img.page-image")).to_have_count(PAGES)
    # Lazy: the last page is not fetched before it scrolls into sight.
    assert page.locator(f"#page-{PAGES} img").get_attribute("src") is None
    expect(page.get_by_role("link", name=re.compile("download", re.I))).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("download", re.I))).to_have_count(0)
    # On the first page: it says so, and Previous page, which could do nothing, is disabled (was: enabled,
    # and a click on it did nothing visible; likewise Next page on the last and zoom at its bounds).
    previous, following = page.locator("#page-prev"), page.locator("#page-next")
    expect(page.locator("#page-number")).to_have_value("1")
    expect(previous).to_be_disabled()
    expect(following).to_be_enabled()
    bruno.shot("viewer-top")
    following.click()
    expect(page.locator("#page-number")).to_have_value("2")
    expect(previous).to_be_enabled()
    bodies = shown_pages(bruno, file.read_bytes())
    assert len(bodies) == PAGES
    # At the end: the last page's number, and Next page disabled.
    expect(page.locator("#page-number")).to_have_value(str(PAGES))
    expect(following).to_be_disabled()
    expect(previous).to_be_enabled()
    bruno.shot("viewer-last-page")
    zoom_out = page.get_by_role("button", name="Zoom out")
    zoom_out.click()
    zoom_out.click()
    expect(page.locator("#zoom-level")).to_have_text("50%")
    expect(zoom_out).to_be_disabled()  # the smallest size: another click would do nothing
    for _ in range(3):
        page.get_by_role("button", name="Zoom in").click()
    expect(page.locator("#zoom-level")).to_have_text("125%")
    expect(zoom_out).to_be_enabled()
    page.locator("#page-number").fill("2")
    page.locator("#page-number").press("Enter")
    expect(page.locator("#page-2")).to_be_in_viewport()
    expect(previous).to_be_enabled()
    expect(following).to_be_enabled()
    bruno.shot("viewer-zoomed-page-2")

    # Back and reload land on the viewer again, never on a second opening.
    page.reload()
    expect(page.locator("#grade-banner")).to_be_visible()
    page.go_back()
    page.go_forward()
    assert page.url == viewer
    expect(page.locator(".views-left")).to_have_text("Views left: 2")
    # A way back before the pages (was: only below the last page), clickable, on a desktop and on a phone,
    # where nothing sticks out sideways.
    page.evaluate("() => window.scrollTo(0, 0)")
    back = page.locator(".viewer-head").get_by_role("link", name="Back to the document")
    expect(back).to_be_in_viewport()
    back.click(trial=True)  # not covered by the sticky banner or the toolbar
    expect(page.get_by_role("link", name="Back to the document")).to_have_count(2)  # and after the last page
    desktop = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    expect(back).to_be_in_viewport()
    back.click(trial=True)
    assert page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    bruno.shot("viewer-phone")
    assert desktop is not None
    page.set_viewport_size(desktop)
    page = bruno.go(f"/documents/{document_id}/reading")
    expect(page.locator("#reading .views-left")).to_have_text("Views left: 2 of 3")
    bruno.shot("one-view-spent")
    cast.assert_clean()
