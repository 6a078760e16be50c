"""No common English word is left in the menu and the headings of any role's menu page read in Chinese or
Russian: a text a template forgot to mark for translation shows up here as the English word itself."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from tests.conftest import csrf_from, login
from tests.support.factories import make_document, make_loan
from vault.models import Role

# Words every role meets in the menu and on the headings of its pages; none of them is a name or a code.
ENGLISH = ("Home", "Customers", "Customer", "Documents", "Document", "Loans", "Loan", "Approve", "Approvals",
           "Reject", "Release", "Search", "Departures", "Audit", "Account", "Users", "Alerts", "Requests",
           "Request", "Views", "Grade", "Status", "Due", "Name", "Title", "Actions", "Filter", "Sign out",
           "Waiting", "Settings", "Password", "Tokens", "History", "Save", "Send", "Menu", "Version")
WORD = re.compile(r"\b(" + "|".join(re.escape(w) for w in ENGLISH) + r")\b")
MENU = re.compile(r'<nav id="main-menu"[^>]*>(.*?)</nav>', re.S)
HEADINGS = re.compile(r"<(h[1-4]|th|button|label|legend|caption|figcaption|summary|title)\b[^>]*>(.*?)</\1>", re.S)
TAG = re.compile(r"<[^>]+>")
HIDDEN = re.compile(r"<(script|style)\b.*?</\1>", re.S)
ROLES = (("boris", Role.BORROWER), ("zhou", Role.COMPILER), ("kira", Role.CUSTODIAN),
         ("lin", Role.APPROVER), ("pavel", Role.AUDITOR), ("admin", Role.ADMIN))


@pytest.fixture
def db_backend() -> str:
    """One database is enough: the words on a page do not depend on it."""
    return "sqlite"


def visible(fragment: str) -> str:
    return html.unescape(TAG.sub(" ", fragment))


def english_words(page: str) -> list[str]:
    """The listed English words in the main menu and the headings (tags and scripts removed)."""
    page = HIDDEN.sub(" ", page)
    texts = [visible(m) for m in MENU.findall(page)] + [visible(m.group(2)) for m in HEADINGS.finditer(page)]
    return sorted({w for text in texts for w in WORD.findall(text)})


def test_the_checker_finds_an_english_word_and_passes_a_translated_page() -> None:
    assert english_words('<nav id="main-menu"><a href="/">Home</a></nav><h1>Loans</h1>') == ["Home", "Loans"]
    assert english_words("<h1>借阅</h1><p>Loans</p><script>var Search;</script>") == []


@pytest.mark.parametrize("header", ["zh-CN", "ru"])
def test_no_menu_page_of_any_role_shows_common_english_words(rt: Any, client: Any, users: Any, header: str) -> None:
    """One scene, so the lists have rows and their tables show their headers: a file of a customer
    everyone works, and a loan of it waiting for the approver."""
    people = {name: users.make(name, role) for name, role in ROLES}
    document_id = make_document(rt, compiler_id=people["zhou"].id, grade=2,
                                title="Q4 plan")
    make_loan(rt, document_id=document_id, borrower_id=people["boris"].id)
    found: dict[str, list[str]] = {}
    visited = 0
    for name, _role in ROLES:
        login(client, name)
        home = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
        links = {chunk.split('"', 1)[0] for chunk in MENU.findall(home)[0].split('href="')[1:]} | {"/account"}
        for link in sorted(links):
            page = client.get(link, headers={"Accept-Language": header})
            assert page.status_code == 200, (name, link, page.status_code)
            visited += 1
            words = english_words(page.get_data(as_text=True))
            if words:
                found[f"{name} {link}"] = words
        client.post("/logout", data={"csrf_token": csrf_from(home)})
    assert visited >= 20, visited  # the walk reached every role's menu, not just the home pages
    assert not found, found
