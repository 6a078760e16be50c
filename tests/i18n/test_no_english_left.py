"""No English is left on any page a person reaches, read in Chinese or in Russian.

For each role of the demo company, the walk follows the main menu, the account page and a search with
results, and from every page one page of each kind it links to, three clicks deep (a customer, its
record's history and a version, a document, a loan, an alert, a departure and its report, the audit
desk's filters and trails). Every visible text and every shown attribute (placeholder, title,
aria-label, alt, a button's value) is checked: once the allow-list (tests/i18n/english.py) has taken out
names, codes and the scene's own data, any Latin word left fails the test, listed with its page.

The walk is driven by the menu, so a page added to it is walked without a change here.
"""

from __future__ import annotations

import html
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pypdf import PdfReader

from tests.conftest import login
from tests.i18n import scene
from tests.i18n.english import WORD, AllowList, english_left, visible_texts
from vault import create_app
from vault.runtime import Runtime
from vault.services import demo

LANGUAGES = {"zh-CN": "zh-Hans", "ru": "ru"}
# A search everyone may make, whose words are the searcher's, not the interface's.
QUERY = "Nordlicht"


@pytest.fixture(scope="module")
def walked_vault(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path,
                 keyring_path: Path) -> Iterator[tuple[Runtime, Flask, AllowList]]:
    """The demo company with work in flight, built once for every walk of this module (SQLite: the
    words on a page do not depend on the database)."""
    folder = tmp_path_factory.mktemp("walked-vault")
    shutil.copyfile(sqlite_template, folder / "vault.db")
    rt = scene.build(folder / "data", f"sqlite:///{folder / 'vault.db'}", keyring_path)
    app = create_app(runtime=rt)
    app.config["TESTING"] = True
    allow = AllowList(scene.data_texts(rt) | {QUERY}, names=[person.username for person in demo.USERS])
    yield rt, app, allow
    rt.close()


def pages_of(app: Flask, name: str, header: str) -> dict[str, str]:
    client = app.test_client()
    login(client, name, demo.DEMO_PASSWORD)

    def get(path: str) -> tuple[int, str, str]:
        answer = client.get(path, headers={"Accept-Language": header})
        return answer.status_code, answer.content_type or "", answer.get_data(as_text=True)

    return scene.walk(get, depth=4, extra=(f"/search/?q={QUERY}",))


def test_the_checker_finds_english_in_text_and_attributes_and_passes_names_and_codes() -> None:
    allow = AllowList({"Nordlicht Logistik GmbH", "Preparing the yearly review"}, names=["eva"])
    page = ('<main><h1>借阅</h1><p>Loans waiting</p><input placeholder="Search here" value="typed">'
            '<button value="Go">确定</button><img alt="Chart of views"><span title="标题" aria-label="Close">x</span>'
            '<script>var Search = 1;</script><style>.Menu{}</style>'
            '<td>Nordlicht Logistik GmbH</td><td>eva · loan:approve · D-12 · a@b.example · Europe/Moscow</td>'
            '<p>客户 Nordlicht Logistik GmbH 的文件 report-2024.pdf</p><pre>{"kind": "customer"}</pre></main>')
    assert english_left(page, allow) == ["Chart", "Close", "Go", "Loans", "Search", "here", "of", "views", "waiting",
                                         "x"]
    assert "var Search = 1;" not in visible_texts(page)


@pytest.mark.parametrize("header", list(LANGUAGES))
@pytest.mark.parametrize("name", scene.PEOPLE)
def test_no_page_a_role_reaches_shows_english(walked_vault: Any, name: str, header: str) -> None:
    _rt, app, allow = walked_vault
    pages = pages_of(app, name, header)
    found = {path: words for path, page in pages.items() if (words := english_left(page, allow))}
    assert not found, f"{name} in {header}: English left on {len(found)} of {len(pages)} pages:\n" + "\n".join(
        f"  {path}: {' '.join(words)}" for path, words in found.items())
    assert all(f'<html lang="{LANGUAGES[header]}">' in page for page in pages.values())
    # The walk went past the menu: the account page, a search with results (for those who search), and
    # pages below the menu's.
    assert {"/", "/account"} <= set(pages), sorted(pages)
    assert "/search/" not in pages or f"/search/?q={QUERY}" in pages, sorted(pages)
    assert len(pages) >= 10, sorted(pages)


def test_the_walk_reaches_the_pages_each_role_works_on(walked_vault: Any) -> None:
    """What each role normally opens is among the pages walked (the walk cannot silently shrink)."""
    _rt, app, _allow = walked_vault
    wanted = {"eva": ("/customers/N", "/documents/N", "/loans/N", "/customers/N/history/N"),
              "mia": ("/loans/approvals", "/alerts/N"), "ines": ("/loans/custody",),
              "oskar": ("/audit/", "/audit/trail/user/N", "/departures/N/report"),
              "admin": ("/admin/users", "/departures/", "/departures/N")}
    for name, kinds in wanted.items():
        walked = {scene.kind(path) for path in pages_of(app, name, "ru")}
        assert set(kinds) <= walked, (name, sorted(walked))


@pytest.mark.parametrize("header", list(LANGUAGES))
def test_the_departure_report_pdf_has_no_english_left(walked_vault: Any, header: str) -> None:
    """The report an auditor downloads: its headings, columns and states in the reader's language.

    A table cell of the PDF wraps a long name over several lines, so here the words of the scene's data
    count one by one (on the pages they count only as whole texts)."""
    rt, app, _allow = walked_vault
    data = scene.data_texts(rt)
    allow = AllowList(data, names=[person.username for person in demo.USERS] +
                      sorted({word for text in data for word in WORD.findall(text)}))
    client = app.test_client()
    login(client, "oskar", demo.DEMO_PASSWORD)
    answer = client.get("/departures/1/report.pdf", headers={"Accept-Language": header})
    assert answer.status_code == 200 and answer.content_type == "application/pdf"
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(answer.data)).pages)
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines())
    left = english_left(lines, allow)
    assert left == [], (left, text)
