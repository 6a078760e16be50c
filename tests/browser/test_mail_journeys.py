"""From the e-mail to the finished task, one role after another, in a real Chromium.

One vault is served with a real SMTP server (aiosmtpd) behind `VAULT_SMTP_URL` and its public address
(`VAULT_BASE_URL`) set to the live server, so the links in the mail are the links a person clicks. For
each role, an act by someone else sends the mail; the test reads it as delivered (recipient, subject),
takes the link from its plain-text part (and checks the HTML part carries the same), opens it in a fresh
window (signing in when asked, then landing on the linked page), goes to the home page, finds the item
waiting in the to-do list and finishes the task from there:

- approver: a loan request → approves it;
- custodian: "release needed" (sent by that approval) → releases it;
- borrower: the decision → opens the document from "Your active loans";
- auditor (the security contact): a departure started at the command line raises an alert → acknowledges it;
- admin: admins get no mail kind of their own; the same departure tells every admin its steps ("notice
  recorded": nobody started it in the web, so no single starter is told) → completes the departure from
  "Departures to see through".

All five share one scene and one test: people, files and mail build on each other (the approval that
finishes the approver's task is the act that mails the custodian and the borrower), and one vault and
one browser keep the whole run to a few seconds per role.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import LiveServer, Vault
from tests.browser.helpers import Cast, Person, message
from tests.conftest import second_factor_code
from tests.mail.smtpd import Received, SmtpServer
from tests.support.factories import make_customer, make_document
from vault.core.context import AccessContext
from vault.mail import send_pending, transport_for
from vault.models import Alert, Departure, Document, Loan, LoanStatus, Role, User, utcnow
from vault.services import departures, loans

pytestmark = pytest.mark.browser

SECURITY_DESK = "sven@example.com"
TITLE = "Warehouse site plan"
# How long delivery may take: the app sends right after its commit, in a background thread.
MAIL_WAIT_S = 10.0


def address(name: str) -> str:
    return f"{name}@example.com"


def give_addresses(vault: Vault, *names: str) -> None:
    with vault.rt.db.session() as session:
        for user in session.scalars(select(User).where(User.username.in_(names))):
            user.email = address(user.username)


def user_id(vault: Vault, name: str) -> int:
    with vault.rt.db.session() as session:
        return session.scalars(select(User.id).where(User.username == name)).one()


def deliver(vault: Vault) -> None:
    """What cron's `vault mail send-pending` does, for acts done outside a web request."""
    send_pending(vault.rt.db, transport_for(vault.rt.settings), utcnow())


def mail_to(smtp: SmtpServer, name: str, subject: str) -> Received:
    """The one message `name` received with `subject`, waiting for the background sender if need be."""
    deadline = time.monotonic() + MAIL_WAIT_S
    while True:
        found = [r for r in smtp.to(address(name)) if r.message["Subject"] == subject]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    got = [r.message["Subject"] for r in smtp.to(address(name))]
    assert len(found) == 1, f"{name} got {got}, not one {subject!r}"
    return found[0]


def link_in(mail: Received, vault: Vault, path: str) -> str:
    """The mail's link to `path`: absolute on the vault's address, in the text and the HTML part alike."""
    links = [url for url in re.findall(r"https?://\S+", mail.text) if not url.endswith("/account")]
    assert links == [vault.url(path)], links
    assert f'href="{vault.url(path)}"' in mail.html
    return links[0]


def follow(person: Person, link: str) -> None:
    """Open the mail's link in a fresh window: sign in when asked, and land on the linked page."""
    page = person.page
    page.goto(link)
    target = urlsplit(link).path
    if urlsplit(page.url).path == "/login":
        person.shot("asked-to-sign-in")
        page.get_by_label("User name").fill(person.name)
        page.get_by_label("Password").fill(person.password)
        person.submit(page.get_by_role("button", name="Sign in"))
        for _ in range(3):
            path = urlsplit(page.url).path
            if path == "/login/code":
                page.get_by_label("Code").fill(second_factor_code(person.vault.rt, person.name))
                person.submit(page.get_by_role("button", name="Continue"))
            elif path == "/agreement":
                page.get_by_label("I have read this agreement and accept it.").check()
                person.submit(page.get_by_role("button", name="Accept"))
            else:
                break
    assert urlsplit(page.url).path == target, f"the link {link} led to {page.url}"
    person.shot("landed-from-mail")


def home(person: Person) -> Page:
    page = person.go("/")
    expect(page.get_by_role("heading", name=re.compile(r"^Welcome, "))).to_be_visible()
    return page


def test_each_role_goes_from_the_mail_link_to_the_finished_task_on_the_home_page(
    live_server: LiveServer, open_vault: Callable[..., Vault], new_page: Callable[[], Page]
) -> None:
    smtp = SmtpServer().start()
    try:
        _journeys(live_server.base, open_vault, new_page, smtp)
    finally:
        smtp.stop()


def _journeys(base: str, open_vault: Callable[..., Vault], new_page: Callable[[], Page], smtp: SmtpServer) -> None:
    # The vault's public address is the live server, so the links in the mail are the ones to click;
    # loopback is the office, so the grade-3 file opens for its borrower.
    vault = open_vault(smtp_url=smtp.url(timeout="5"), mail_from="vault@example.com", base_url=base,
                       security_contacts=SECURITY_DESK, trusted_places="Office=127.0.0.0/8")
    cast = Cast(vault, new_page)
    for name, roles in {"carl": (Role.COMPILER,), "bruno": (Role.BORROWER,), "alice": (Role.APPROVER,),
                        "cora": (Role.CUSTODIAN,), "sven": (Role.AUDITOR,), "ines": (Role.ADMIN,),
                        "lea": (Role.BORROWER,), "sam": (Role.BORROWER,)}.items():
        cast.make(name, *roles)
    give_addresses(vault, "carl", "bruno", "alice", "cora", "sven", "ines", "lea", "sam")
    ctx = AccessContext.cli()
    document_id = make_document(vault.rt, compiler_id=user_id(vault, "carl"), grade=3, title=TITLE,
                                custodian_id=user_id(vault, "cora"))

    # -- approver: Bruno asks for the site plan; Alice is mailed, approves from her to-do list ----------
    with vault.rt.db.session() as session:
        loan_id = loans.request_loan(vault.rt, session, session.get(User, user_id(vault, "bruno")),
                                     session.get(Document, document_id), reason="Planning the depot route",
                                     category="complaint", place="Office", days=3, ctx=ctx).id
    deliver(vault)
    mail = mail_to(smtp, "alice", f'Loan request for "{TITLE}" by Bruno')
    alice = cast.window("alice")
    follow(alice, link_in(mail, vault, f"/loans/{loan_id}"))
    expect(alice.page.get_by_role("button", name="Approve")).to_be_visible()
    page = home(alice)
    item = page.locator("#todo-decisions li", has_text=TITLE)
    expect(item).to_contain_text("asked by Bruno")
    alice.shot("todo-decision")
    alice.submit(item.get_by_role("link", name=TITLE))
    alice.submit(page.get_by_role("button", name="Approve"))
    expect(message(page, "success")).to_contain_text("Your approval of")
    alice.shot("approved")
    expect(home(alice).locator("#todo-decisions li", has_text=TITLE)).to_have_count(0)

    # -- custodian: the approval asks Cora (the file's custodian) to release it --------------------------
    mail = mail_to(smtp, "cora", f'Release needed: "{TITLE}" for Bruno')
    cora = cast.window("cora")
    follow(cora, link_in(mail, vault, f"/loans/{loan_id}"))
    page = home(cora)
    item = page.locator("#todo-releases li", has_text=TITLE)
    expect(item).to_contain_text("for Bruno")
    cora.shot("todo-release")
    cora.submit(item.get_by_role("link", name=TITLE))
    page.locator("#release-confirm").check()
    cora.submit(page.get_by_role("button", name="Release the loan (its days start now)"))
    expect(message(page, "success")).to_have_text("The loan is released; its days start now.")
    cora.shot("released")
    expect(home(cora).locator("#todo-releases li", has_text=TITLE)).to_have_count(0)
    with vault.rt.db.session() as session:
        assert session.get(Loan, loan_id).status == LoanStatus.ACTIVE

    # -- borrower: the decision mail; Bruno reads the file from "Your active loans" ----------------------
    mail = mail_to(smtp, "bruno", f'Your request for "{TITLE}" is approved')
    assert "A custodian must now release it" in mail.text
    bruno = cast.window("bruno")
    follow(bruno, link_in(mail, vault, f"/loans/{loan_id}"))
    expect(bruno.page.locator(".badge.loan-active")).to_be_visible()
    page = home(bruno)
    row = page.locator("#todo-loans tr", has_text=TITLE)
    expect(row.locator('td[data-label="Views left"]')).to_have_text("3")
    bruno.shot("todo-active-loan")
    bruno.submit(row.get_by_role("link", name=TITLE))
    assert urlsplit(page.url).path == f"/documents/{document_id}"
    page = bruno.go(f"/documents/{document_id}/reading")
    page.get_by_label("Why are you reading it now?").fill("Planning the depot route")
    page.get_by_label("Where are you?").fill("Office")
    bruno.submit(page.get_by_role("button", name="Open (uses one view)"))
    expect(page.locator(".views-left")).to_have_text("Views left: 2")
    expect(page.locator("img.page-image").first).to_be_visible()
    bruno.shot("reading")

    # -- a departure started at the command line: an alert for the security desk, a step for the admins -
    with vault.rt.db.session() as session:
        make_customer(session, owner_id=user_id(vault, "lea"), name="Lambert SA")
        departure_id = departures.start_departure(
            vault.rt, session, None, session.get(User, user_id(vault, "lea")),
            last_day=utcnow().date() + timedelta(days=14), successor=session.get(User, user_id(vault, "sam")),
            ctx=ctx).id
    deliver(vault)

    # -- auditor: the notice raised an alert; the security contact (Sven) acknowledges it --------------------
    about_lea = [r for r in smtp.to(SECURITY_DESK) if r.message["Subject"].endswith("(Lea)")]
    assert len(about_lea) == 1, [r.message["Subject"] for r in smtp.to(SECURITY_DESK)]
    mail = about_lea[0]
    assert re.fullmatch(r"\[\w+\] Security alert: .+ \(Lea\)", mail.message["Subject"]), mail.message["Subject"]
    with vault.rt.db.session() as session:
        alert = session.scalars(select(Alert).where(Alert.user_id == user_id(vault, "lea"))).one()
        alert_id, summary = alert.id, alert.summary
    sven = cast.window("sven")
    follow(sven, link_in(mail, vault, f"/alerts/{alert_id}"))
    page = home(sven)
    item = page.locator("#todo-alerts li", has_text=summary)
    expect(item).to_be_visible()
    sven.shot("todo-alert")
    sven.submit(item.get_by_role("link", name=summary))
    sven.submit(page.get_by_role("button", name="Acknowledge"))
    expect(message(page, "success")).to_be_visible()
    sven.shot("acknowledged")

    # -- admin: the notice's step mail; Ines completes the departure from her to-do list ----------------
    mail = mail_to(smtp, "ines", "Departure of Lea: notice recorded")
    ines = cast.window("ines")
    follow(ines, link_in(mail, vault, f"/departures/{departure_id}"))
    page = home(ines)
    item = page.locator("#todo-departures li", has_text="Lea")
    expect(item).to_contain_text("ready to complete")  # her one customer is not a key one: nothing to confirm
    ines.shot("todo-departure")
    ines.submit(item.get_by_role("link"))
    page.locator("#complete-confirm").check()
    ines.submit(page.get_by_role("button", name="Complete the departure"))
    expect(message(page, "success")).to_be_visible()
    ines.shot("departure-completed")
    expect(home(ines).locator("#todo-departures li", has_text="Lea")).to_have_count(0)
    with vault.rt.db.session() as session:
        assert session.get(Departure, departure_id).completed_at is not None

    cast.assert_clean()
