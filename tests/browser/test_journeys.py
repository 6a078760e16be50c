"""Journeys through vault in a real Chromium, person by person, against a live server on 127.0.0.1.

Each journey is what the people of a company do on an ordinary day: a compiler files a customer's
document, a salesperson borrows it with a reason, an approver decides, a custodian releases what is
strictly confidential, the borrower reads it within the quota. Every step leaves a screenshot under
test-artifacts/screenshots/; the bytes a borrower is shown or saves are compared with the file the
compiler uploaded; and no page of any journey may load anything from outside 127.0.0.1 or report a
Content-Security-Policy violation.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import secrets
import struct
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from tests.browser.conftest import Vault
from tests.browser.helpers import Cast, Person, Watch, message, post_form
from vault.models import AuditEvent, Customer, Role

pytestmark = pytest.mark.browser


# -- files the compiler uploads ------------------------------------------------------------------------


def price_list(tmp_path: Path) -> Path:
    """A small text file with non-ASCII text and a random line, so a stale or foreign copy cannot match."""
    path = tmp_path / "dupont-price-list.txt"
    path.write_bytes(
        "Dupont Industries — negotiated prices 2025\n"
        "Valves DN50: 41,20 € · delivery in 5 days\n"
        f"reference {secrets.token_hex(16)}\n".encode()
    )
    return path


def site_plan(tmp_path: Path) -> Path:
    """A small PNG (random pixels), drawn here: grade 3 files are often scans."""
    width, height = 16, 8
    rows = b"".join(b"\x00" + secrets.token_bytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    path = tmp_path / "site-plan.png"
    path.write_bytes(png)
    return path


# -- steps shared by the journeys ----------------------------------------------------------------------


def create_customer(compiler: Person, name: str, segment: str = "Ordinary", owner: str | None = None) -> int:
    page = compiler.go("/")
    compiler.menu("Customers")
    compiler.submit(compiler.main().get_by_role("link", name="New customer"))
    page.get_by_label("Name").fill(name)
    page.get_by_label("Segment").select_option(label=segment)
    if owner:
        page.get_by_label("Account manager").select_option(label=_option_label(page, "Account manager", owner))
    compiler.shot("new-customer")
    compiler.submit(page.get_by_role("button", name="Create the customer"))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    compiler.shot("customer-created")
    return int(re.search(r"/customers/(\d+)$", page.url).group(1))


def upload(compiler: Person, customer_id: int, title: str, grade: int, file: Path, custodian: str | None = None) -> int:
    """Upload `file` from the customer's page, choosing it through the file input as a person would."""
    page = compiler.go(f"/customers/{customer_id}")
    compiler.submit(compiler.main().get_by_role("link", name="Upload a file"))
    page.get_by_label("Title").fill(title)
    page.get_by_label("Grade").select_option(value=str(grade))
    if custodian:
        page.get_by_label("Custodian").select_option(label=_option_label(page, "Custodian", custodian))
    with page.expect_file_chooser() as chooser:
        page.get_by_label("File", exact=True).click()
    chooser.value.set_files(str(file))
    compiler.shot(f"upload-grade-{grade}")
    compiler.submit(page.get_by_role("button", name="Upload", exact=True))
    expect(message(page, "success")).to_contain_text("is stored, encrypted")
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.locator("td.filename")).to_have_text(file.name)
    compiler.shot("uploaded")
    return int(re.search(r"/documents/(\d+)$", page.url).group(1))


def fill_contact(group: Locator, contact: dict[str, str]) -> None:
    """Fill one contact's group of fields by their labels ("Full name", "Phones", ...), as a person does."""
    for label, value in contact.items():
        group.get_by_label(label, exact=True).fill(value)


def update_record(owner: Person, customer_id: int, *, contacts: Sequence[dict[str, str]] = (),
                  terms: dict[str, str] | None = None, **fields: str) -> None:
    """Fill the record's edit form on the customer page and save it: facts by their ids, each contact into
    the next blank contact group (by label), each term into the next blank term row."""
    page = owner.go(f"/customers/{customer_id}")
    form = page.locator("#record-edit")
    for name, value in fields.items():
        form.locator(f"#rec-{name}").fill(value)
    for index, contact in enumerate(contacts):
        fill_contact(form.locator("fieldset.contact").nth(index), contact)
    for index, (name, value) in enumerate((terms or {}).items()):
        row = form.locator("fieldset.term").nth(index)
        row.get_by_label("Term", exact=True).fill(name)
        row.get_by_label("Value", exact=True).fill(value)
    owner.shot("record-edit")
    owner.submit(form.get_by_role("button", name="Save the record"))
    expect(message(page, "success")).to_contain_text("Record saved as version")


def log_contact(person: Person, customer_id: int, *, contact: str, topic: str, channel: str = "call") -> None:
    """Log a contact with the form under the customer page's contact log."""
    page = person.go(f"/customers/{customer_id}")
    form = page.locator("#log-form")
    form.locator("#log-happened_on").fill(datetime.now(UTC).date().isoformat())
    form.locator("#log-channel").select_option(value=channel)
    form.locator("#log-contact").fill(contact)
    form.locator("#log-topic").fill(topic)
    person.shot(f"log-{channel}")
    person.submit(form.get_by_role("button", name="Log the contact"))
    expect(message(page, "success")).to_have_text("Contact logged.")


def _option_label(page: Page, label: str, username: str) -> str:
    """The visible text of the select option naming `username` ("Cora (cora)")."""
    options = page.get_by_label(label).locator("option").all_inner_texts()
    matches = [text.strip() for text in options if text.strip().endswith(f"({username})")]
    assert matches, f"{username} is not offered as {label}: {options}"
    return matches[0]


def find_document(person: Person, customer: str, title: str) -> int:
    """Reach a document the way a salesperson who does not work the customer must: the customer list has
    only their own customers, so they look the customer up by name (audited) and open it from there."""
    page = person.go("/")
    person.menu("Customers")
    person.submit(person.main().get_by_role("link", name="Look up another customer"))
    page.get_by_label("Customer name").fill(customer)
    person.submit(person.main().get_by_role("button", name="Look up"))
    person.submit(person.main().get_by_role("link", name=customer))
    person.submit(person.main().get_by_role("link", name=title))
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    return int(re.search(r"/documents/(\d+)$", page.url).group(1))


def request_loan(borrower: Person, document_id: int, reason: str, days: int, place: str = "Head office") -> int:
    """Ask for a loan with the form on the document's page, where the borrower is."""
    page = borrower.page
    assert urlsplit(page.url).path == f"/documents/{document_id}", page.url
    panel = page.locator("#reading")
    expect(panel).to_contain_text("Reading this file needs an approved loan.")
    panel.get_by_label("Why do you need it?").fill(reason)
    panel.get_by_label("Category").select_option(label="Visit preparation")
    panel.get_by_label("Where will you read it?").fill(place)
    panel.get_by_label("For how many days?").fill(str(days))
    borrower.shot("loan-request")
    borrower.submit(panel.get_by_role("button", name="Request a loan"))
    expect(message(page, "success")).to_have_text("Your request is sent to the approvers.")
    expect(page.locator(".badge.loan-requested")).to_be_visible()
    borrower.shot("loan-requested")
    return int(re.search(r"/loans/(\d+)$", page.url).group(1))


def approve(approver: Person, loan_id: int, title: str, comment: str) -> None:
    page = approver.go("/")
    approver.menu("Approvals")
    row = page.locator("table.queue tr", has_text=title)
    expect(row).to_have_count(1)
    approver.shot("approval-queue")
    approver.submit(row.get_by_role("link", name="Decide"))
    assert page.url.endswith(f"/loans/{loan_id}")
    page.get_by_label("Comment (optional)").fill(comment)
    approver.shot("deciding")
    approver.submit(page.get_by_role("button", name="Approve"))
    # Straight on to the next request, or back to the queue when none is left.
    expect(message(page, "success")).to_contain_text("Your approval of")
    approver.shot("approved")


def open_view(borrower: Person, document_id: int, *, left_before: int, limit: int, download: bool = False) -> str:
    """Spend one view from the document's reading panel; return the viewer's URL, or for a download the
    single-use content URL its page offers."""
    page = borrower.go(f"/documents/{document_id}/reading")
    expect(page.locator("#reading .views-left")).to_have_text(f"Views left: {left_before} of {limit}")
    page.get_by_label("Why are you reading it now?").fill("Checking prices before the visit on Monday")
    page.get_by_label("Where are you?").fill("Head office")
    if download:
        page.get_by_label("Download the file instead of viewing it").check()
    borrower.submit(page.get_by_role("button", name="Open (uses one view)"))
    expect(page.locator(".views-left")).to_have_text(f"Views left: {left_before - 1}")
    banner = re.compile(r"^\s*(IMPORTANT — GRADE 2|CONFIDENTIAL — GRADE 3)\s*$")  # the file's own grade
    expect(page.locator(".grade-banner")).to_have_text(banner)
    assert re.search(r"/views/\d+$", page.url), page.url  # post/redirect/get: the viewer's own URL
    if not download:
        return page.url
    link = page.locator("#content-link")
    expect(link).to_have_text("Download the stamped copy")
    href = link.get_attribute("href")
    assert href and href.startswith("/content/"), href
    return href


def shown_pages(borrower: Person, uploaded: bytes) -> list[bytes]:
    """Scroll through the viewer: every page image loads (lazily, as it comes into sight); each one, fetched
    again with the window's session, is a stamped JPEG, never the uploaded bytes."""
    page = borrower.page
    images = page.locator("img.page-image")
    bodies: list[bytes] = []
    for index in range(images.count()):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        expect(image).to_have_attribute("src", re.compile(r"/views/pages/"))
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        response = page.request.get(borrower.vault.url(image.get_attribute("src")))
        assert response.status == 200, response.status
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"] == "image/jpeg"
        body = response.body()
        assert body != uploaded and hashlib.sha256(body).digest() != hashlib.sha256(uploaded).digest()
        bodies.append(body)
    return bodies


# What the auditor expects of Bruno's reading: two views and a download allowed, the fourth refused.
EXPECTED_READING = [
    ("document:view", "allowed", ""),
    ("document:view", "allowed", ""),
    ("document:download", "allowed", ""),
    ("document:view", "denied", "quota_exhausted"),
]


def review_reading(auditor: Person, vault: Vault, document_id: int) -> None:
    """Filter the log to one borrower's reading of one document, check the table, download it as CSV."""
    page = auditor.go("/")
    auditor.menu("Audit log")
    page.get_by_label("Person (by or about)").fill("bruno")
    page.get_by_label("Document", exact=True).fill(str(document_id))
    page.get_by_label("Action").select_option(value="document:*")
    auditor.submit(page.get_by_role("button", name="Show"))
    table = page.locator("table.audit-table tbody tr")
    # Beside the views and the download, each time Bruno opened the document's page or its reading panel
    # (a `document:read`, which names the file and its customer).
    with vault.rt.db.session() as session:
        pages_read = len(session.scalars(select(AuditEvent.seq).where(
            AuditEvent.action == "document:read", AuditEvent.document_id == document_id,
            AuditEvent.actor_name == "bruno")).all())
    assert pages_read > 0
    expect(table).to_have_count(len(EXPECTED_READING) + pages_read)
    expect(table.filter(has_text="quota_exhausted")).to_have_count(1)
    expect(page.locator("figure.chart").first).to_be_visible()
    auditor.shot("audit-filtered")

    page.get_by_label("Format").select_option(value="csv")
    download, data = auditor.download(page.get_by_role("button", name="Download", exact=True))
    assert download.suggested_filename.endswith(".csv")
    every = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert {r["actor_name"] for r in every} == {"bruno"}
    assert {r["document_id"] for r in every} == {str(document_id)}
    assert [r["action"] for r in every].count("document:read") == pages_read
    rows = [r for r in every if r["action"] != "document:read"]
    # Oldest first in the file; the page shows newest first.
    assert [(r["action"], r["outcome"], r["reason_code"]) for r in rows] == EXPECTED_READING
    assert {r["declared_place"] for r in rows} == {"Head office"}
    assert {r["client_addr"] for r in rows} == {"127.0.0.1"}
    allowed = [r for r in rows if r["outcome"] == "allowed"]
    assert {r["reason_text"] for r in allowed} == {"Checking prices before the visit on Monday"}
    assert [json.loads(r["detail"])["remaining"] for r in allowed] == [2, 1, 0]
    assert all(len(r["mac"]) >= 32 and r["prev_mac"] for r in every)
    seqs = [int(r["seq"]) for r in every]
    assert seqs == sorted(seqs)
    # The file holds exactly what the log holds under those sequence numbers.
    with vault.rt.db.session() as session:
        stored = {e.seq: e for e in session.scalars(select(AuditEvent).where(AuditEvent.seq.in_(seqs)))}
    for row in every:
        event = stored[int(row["seq"])]
        assert (row["action"], row["outcome"], row["mac"]) == (event.action, event.outcome, event.mac)

    # Each download is itself recorded, with a signed manifest describing the file.
    auditor.go("/audit/")
    manifest_link = page.get_by_role("link", name="manifest").first
    expect(manifest_link).to_be_visible()
    manifest = page.request.get(vault.url(manifest_link.get_attribute("href") or "")).json()
    assert manifest["rows"] == len(every)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["file"] == download.suggested_filename

    # Every refusal Bruno met, newest first: the fourth view, the used link, his own approval.
    page.get_by_label("Person (by or about)").fill("bruno")
    page.get_by_label("Outcome").select_option(value="denied")
    auditor.submit(page.get_by_role("button", name="Show"))
    expect(table).to_have_count(3)
    expect(table.nth(0)).to_contain_text("quota_exhausted")
    expect(table.nth(1)).to_contain_text("content_url_used")
    expect(table.nth(2)).to_contain_text("separation_of_duties")
    auditor.shot("audit-refusals")


# -- the journeys --------------------------------------------------------------------------------------


def test_grade_2_file_from_upload_to_the_fourth_view(
    vault: Vault, new_page: Callable[[], Page], tmp_path: Path
) -> None:
    cast = Cast(vault, new_page)
    carla = cast.enter("carla", Role.COMPILER)
    # Bruno sells and also approves others' requests: the rules, not the menus, keep him from his own.
    bruno = cast.enter("bruno", Role.BORROWER, Role.APPROVER)
    alice = cast.enter("alice", Role.APPROVER)

    # The compiler files the customer's price list as grade 2, picking it with the file chooser.
    file = price_list(tmp_path)
    customer_id = create_customer(carla, "Dupont Industries")
    document_id = upload(carla, customer_id, "Price list 2025", 2, file)

    # The borrower finds it and asks for it, with a reason.
    assert find_document(bruno, "Dupont Industries", "Price list 2025") == document_id
    bruno.shot("document")
    loan_id = request_loan(bruno, document_id, "Preparing the yearly price review with the buyer", days=5)

    # He cannot approve his own request: no button offers it, his queue does not list it, and a
    # hand-made POST is refused in plain words.
    page = bruno.page
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    bruno.menu("Approvals")
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    bruno.shot("own-request-not-in-queue")
    bruno.go(f"/loans/{loan_id}")
    post_form(bruno, f"/loans/{loan_id}/approve", {"comment": "looks fine to me"})
    assert bruno.refusal() == "Nobody decides on their own request."
    expect(page.locator(".refusal .code")).to_have_text("Reason code: separation_of_duties")
    bruno.shot("self-approval-refused")
    bruno.go(f"/loans/{loan_id}")
    expect(page.locator(".badge.loan-requested")).to_be_visible()

    # Another approver approves; grade 2 needs no release, so the loan is active at once.
    approve(alice, loan_id, "Price list 2025", "Yearly review, fine")
    bruno.go(f"/loans/{loan_id}")
    expect(page.locator(".badge.loan-active")).to_be_visible()
    bruno.shot("loan-active")

    # Three views, each a different way the bytes reach the person: shown in the window, fetched
    # with the window's own session, saved as a download. Each is exactly the uploaded file.
    uploaded = file.read_bytes()
    viewer = open_view(bruno, document_id, left_before=3, limit=3)
    bruno.shot("view-1-opened")
    assert len(shown_pages(bruno, uploaded)) == 1
    bruno.shot("view-1-shown")
    # Reloading the viewer shows the same view again and spends nothing.
    page.reload()
    expect(page.locator(".views-left")).to_have_text("Views left: 2")
    assert page.url == viewer

    open_view(bruno, document_id, left_before=2, limit=3)
    bruno.shot("view-2-opened")
    page.go_back()
    page.go_forward()
    expect(page.locator(".views-left")).to_have_text("Views left: 1")

    # Grade 2 allows a download: what leaves is a stamped copy (a PDF naming Bruno), not the file itself.
    href = open_view(bruno, document_id, left_before=1, limit=3, download=True)
    bruno.shot("view-3-download-offered")
    download, saved = bruno.download(page.locator("#content-link"))
    assert saved != uploaded and saved.startswith(b"%PDF-")
    assert download.suggested_filename == file.stem + ".pdf"
    again = page.request.get(vault.url(href))  # the link works once
    assert again.status != 200

    # The fourth: the panel says the views are used up, and an attempt is refused with the reason.
    page = bruno.go(f"/documents/{document_id}/reading")
    expect(page.locator("#reading .views-left")).to_have_text("Views left: 0 of 3")
    expect(page.locator("#reading")).to_contain_text("You have used your 3 views of this document.")
    expect(page.get_by_role("button", name="Open (uses one view)")).to_have_count(0)
    bruno.shot("views-used-up")
    post_form(bruno, f"/documents/{document_id}/view",
              {"reason": "Checking prices before the visit on Monday", "place": "Head office"})
    expect(page.get_by_role("heading", name="The document was not opened")).to_be_visible()
    assert bruno.refusal() == "You have used your 3 views of this document."
    expect(page.get_by_role("link", name="Ask for more views")).to_be_visible()
    bruno.shot("view-4-refused")

    # The auditor looks at how the file was read, then downloads what the filters show.
    ada = cast.enter("ada", Role.AUDITOR)
    review_reading(ada, vault, document_id)

    cast.assert_clean()


def test_grade_3_file_released_by_the_custodian_in_a_trusted_place(
    open_vault: Callable[..., Vault], new_page: Callable[[], Page], tmp_path: Path
) -> None:
    # Grade 3 opens only from a trusted place: here the loopback network is the office.
    vault = open_vault(trusted_places="Office=127.0.0.0/8")
    cast = Cast(vault, new_page)
    carla = cast.enter("carla", Role.COMPILER)
    cora = cast.enter("cora", Role.CUSTODIAN)
    bruno = cast.enter("bruno", Role.BORROWER)
    alice = cast.enter("alice", Role.APPROVER)

    file = site_plan(tmp_path)
    customer_id = create_customer(carla, "Martin Logistics", segment="Key account")
    document_id = upload(carla, customer_id, "Warehouse site plan", 3, file, custodian="cora")
    expect(carla.page.locator("dl.facts")).to_contain_text("Cora")

    assert find_document(bruno, "Martin Logistics", "Warehouse site plan") == document_id
    expect(bruno.page.locator("dl.facts")).to_contain_text("only from a trusted place")
    loan_id = request_loan(bruno, document_id, "Planning the delivery route for the new depot", days=2,
                           place="Office")
    approve(alice, loan_id, "Warehouse site plan", "Needed for the depot project")

    # Approved is not yet readable: grade 3 waits for the custodian.
    page = bruno.go(f"/loans/{loan_id}")
    expect(page.locator(".badge.loan-approved")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("then released by a custodian")
    bruno.shot("waiting-for-release")

    page = cora.go("/")
    cora.menu("Custody")
    row = page.locator("table.releases tr", has_text="Warehouse site plan")
    expect(row).to_contain_text("Bruno")
    expect(row).to_contain_text("earlier loans")  # the borrower's history with this customer
    cora.shot("custody-desk")
    row.get_by_label("I have read the reason").check()  # the server checks the box too
    cora.submit(row.get_by_role("button", name="Release"))
    expect(message(page, "success")).to_have_text("The loan is released; its days start now.")
    expect(page.locator("table.active-loans")).to_contain_text("Warehouse site plan")
    cora.shot("released")

    page = bruno.go(f"/loans/{loan_id}")
    expect(page.locator(".badge.loan-active")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("Cora")
    # From the office the file opens; no download for grade 3: the choice is not even offered.
    page = bruno.go(f"/documents/{document_id}/reading")
    expect(page.get_by_text("you are not in one")).to_have_count(0)
    expect(page.get_by_label("Download the file instead of viewing it")).to_have_count(0)
    open_view(bruno, document_id, left_before=3, limit=3)
    bruno.shot("opened")
    page = bruno.page
    assert len(shown_pages(bruno, file.read_bytes())) == 1
    expect(page.locator("img.page-image")).to_be_visible()
    expect(page.get_by_text("Download", exact=False)).to_have_count(0)
    bruno.shot("shown")
    with vault.rt.db.session() as session:
        view = session.scalars(select(AuditEvent).where(AuditEvent.action == "document:view",
                                                        AuditEvent.document_id == document_id)).one()
    assert (view.outcome, view.named_place, view.actor_name) == ("allowed", "Office", "bruno")

    cast.assert_clean()


def test_departure_hands_over_a_key_customer_and_ends_access_after_the_last_day(
    vault: Vault, new_page: Callable[[], Page]
) -> None:
    cast = Cast(vault, new_page)
    cast.make("lea", Role.BORROWER)
    cast.make("sam", Role.BORROWER)
    carla = cast.enter("carla", Role.COMPILER)
    lea = cast.window("lea")
    lea.sign_in()
    adam = cast.enter("adam", Role.ADMIN)
    sam = cast.window("sam")
    sam.sign_in()

    # Lea looks after a VIP customer: a key customer, whose handover must be confirmed.
    customer_id = create_customer(carla, "Lambert SA", segment="VIP", owner="lea")
    expect(carla.page.locator("dl.facts").first).to_contain_text("Lea")
    update_record(lea, customer_id, city="Lyon",
                  contacts=[{"Full name": "Marc Lambert", "Role": "Managing director", "Phones": "+33 4 7255 0142",
                             "E-mails": "marc@lambert.example"}])

    # The administrator records her notice, with Sam as successor.
    today = datetime.now(UTC).date()
    page = adam.go("/")
    adam.menu("Departures")
    adam.submit(adam.main().get_by_role("link", name="Record a notice"))
    page.get_by_label("Person giving notice").select_option(label=_option_label(page, "Person giving notice", "lea"))
    page.get_by_label("Notice given on").fill((today - timedelta(days=14)).isoformat())
    page.get_by_label("Last working day").fill((today + timedelta(days=14)).isoformat())
    page.get_by_label("Successor (receives the customers)").select_option(
        label=_option_label(page, "Successor (receives the customers)", "sam"))
    adam.shot("notice")
    adam.submit(page.get_by_role("button", name="Record the notice"))
    expect(message(page, "success")).to_have_text("Notice recorded for Lea.")
    departure_url = page.url
    item = page.locator("tr", has_text="Lambert SA")
    expect(item).to_contain_text("Segment: VIP")
    expect(item).to_contain_text("Sam")
    expect(item).to_contain_text("awaiting confirmation")
    adam.shot("departure-on-notice")

    # During her notice Lea still works.
    lea.go("/")
    expect(lea.page.get_by_role("heading", name="Welcome, Lea")).to_be_visible()

    # The successor calls the main contact and logs it: what confirming a key customer asks for.
    log_contact(sam, customer_id, contact="Marc Lambert", topic="Introduced myself as the new account manager")
    # The successor confirms he has spoken to the customer.
    page = sam.go("/")
    sam.menu("Handover")
    row = page.locator("tr", has_text="Lambert SA")
    expect(row).to_contain_text("awaiting confirmation")
    row.get_by_label("Date of the contact").fill(today.isoformat())
    row.get_by_label("What was discussed").fill("Met the purchasing manager; introduced myself as the new contact.")
    sam.shot("handover")
    sam.submit(row.get_by_role("button", name="Confirm"))
    expect(message(page, "success")).to_have_text("Contact with Lambert SA confirmed.")
    expect(page.locator("tr", has_text="Lambert SA")).to_contain_text("confirmed")
    sam.shot("handover-confirmed")
    with vault.rt.db.session() as session:
        assert session.get(Customer, customer_id).owner.username == "sam"

    # Lea leaves earlier than planned: her last day was yesterday, so access ends at once.
    page = adam.page
    page.goto(departure_url)
    expect(page.locator("tr", has_text="Lambert SA")).to_contain_text("confirmed")
    expect(page.get_by_text("Every customer is handed over: the departure can be completed.")).to_be_visible()
    page.get_by_role("textbox", name="Last working day").fill((today - timedelta(days=1)).isoformat())
    adam.submit(page.get_by_role("button", name="Save"))
    expect(message(page, "success")).to_have_text("Departure updated.")
    expect(page.locator(".badge.departure-ended")).to_have_text("access ended")
    adam.shot("access-ended")

    # Lea's open window no longer works, and she cannot sign in again.
    page = lea.go("/customers/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("heading", name="Welcome, Lea")).to_have_count(0)
    lea.shot("session-ended")
    page.get_by_label("User name").fill("lea")
    page.get_by_label("Password").fill(lea.password)
    lea.submit(page.get_by_role("button", name="Sign in"))
    expect(message(page, "error")).to_contain_text("Wrong user name or password.")
    expect(page).to_have_url(re.compile(r"/login"))
    lea.shot("sign-in-refused")

    cast.assert_clean()


# Everyone's menu between them: an administrator holds no other role, an auditor no duty role.
TOUR = {
    "ines": (Role.ADMIN,),
    "otto": (Role.AUDITOR, Role.BORROWER),
    "una": (Role.BORROWER, Role.COMPILER, Role.APPROVER, Role.CUSTODIAN),
}


def test_every_menu_page_loads_only_from_here_without_csp_violations(
    vault: Vault, new_page: Callable[[], Page]
) -> None:
    """Each page of each role's menu, as the person reaches it: answered, whole, and self-contained."""
    cast = Cast(vault, new_page)
    seen: set[str] = set()
    for name, roles in TOUR.items():
        # The administrator sets up the authenticator at the first sign-in, reading the key off the page.
        person = cast.enter(name, *roles, second_factor=False if Role.ADMIN in roles else None)
        page = person.page
        labels = person.page.get_by_role("navigation").get_by_role("link").all_inner_texts()
        assert "Home" in labels and "My account" in labels, labels
        for label in labels:
            with page.expect_response(lambda response: response.request.is_navigation_request()) as answer:
                page.get_by_role("navigation").get_by_role("link", name=label, exact=True).click()
            assert answer.value.status == 200, (label, answer.value.status, answer.value.url)
            page.wait_for_load_state()
            expect(page.locator("main h1").first).to_be_visible()
            person.shot(label)
            seen.add(label)
    expected = {"Home", "My account", "Users", "Departures", "Audit log", "Customers", "Upload a file", "My loans",
                "Approvals", "Custody", "Handover", "Leavers' loans", "Alerts"}
    assert expected <= seen, expected - seen
    first_steps = {person.name: person.first_steps for person in cast.people}
    assert first_steps == {
        "ines": ["enrol", "recovery-codes", "agreement"],
        "otto": ["second-factor", "agreement"],
        "una": ["second-factor", "agreement"],
    }
    cast.assert_clean()


def test_the_watch_catches_a_csp_violation_and_a_request_elsewhere(vault: Vault, page: Page) -> None:
    """The checks every journey ends with can fail: an inline script and a foreign request are noticed."""
    watch = Watch()
    watch.attach(page)
    page.goto(vault.url("/login"))
    watch.assert_clean()
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        page.evaluate("""() => {
            const script = document.createElement('script');
            script.textContent = 'document.title = "injected"';
            document.body.appendChild(script);
        }""")
    expect(page).not_to_have_title("injected")
    with pytest.raises(AssertionError, match="Content-Security-Policy violations"):
        watch.assert_clean()

    other = Watch()
    other.attach(page)
    page.goto("about:blank")
    with page.expect_event("requestfailed"):
        page.evaluate("() => { fetch('http://192.0.2.1/track').catch(() => null); }")
    with pytest.raises(AssertionError, match=re.escape("requests left 127.0.0.1")):
        other.assert_clean()
    assert other.foreign == ["http://192.0.2.1/track"]
