"""Every page a person reaches from the menu, on a phone and through a screen reader's eyes.

The demo company is set up (its people in every role, thirty-six customers, seventy-two files) with
the work in progress it seeds, then each person signs in on a 390 px wide window, opens the folded menu
and visits every page it links to, and from each of those one page of every kind it links to (a customer, a document, a
loan, a person's trail). On each page: nothing may scroll sideways, and axe-core (the accessibility
engine, run inside the page) may find no serious or critical violation. The menu pages are checked
again at desktop width, where the layout differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.resources import files
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error, Page, expect

from tests.browser.conftest import Vault
from tests.browser.helpers import Cast, Person
from tests.fixtures.browser import VIEWPORT
from vault.services import demo

# The demo company is set up with its files drawn in this process (see the fixture).
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("demo_drawn_in_process")]

PHONE = {"width": 390, "height": 844}
# One person per role, and a sales manager (a borrower with a team below her).
PEOPLE = ("eva", "hana", "mia", "ines", "nora", "oskar", "admin")
SERIOUS = ("serious", "critical")
# Links that download a file or leave the pages a person reads (they are checked elsewhere).
NOT_PAGES = re.compile(r"/content/|/manifest|/export|/download|/logout|\.(csv|jsonl|pdf|png|json)$")
# Pages of one kind ("/customers/12" and "/customers/13") are checked once.
_NUMBER = re.compile(r"\d+")


def _axe_source() -> str:
    """axe-core's own build, as shipped inside the axe-playwright-python package."""
    return files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")


def _kind(path: str) -> str:
    return _NUMBER.sub("N", path)


def _open_menu(person: Person) -> list[str]:
    """Unfold the menu with its button, as on a phone; the paths it links to."""
    page = person.page
    menu = page.get_by_role("navigation", name="Main menu")
    expect(menu).to_be_hidden()
    page.locator("label.menu-button").click()
    expect(menu).to_be_visible()
    person.shot("menu-open")
    assert not _overflows(page), "the open menu is wider than the screen"
    return [urlsplit(href).path for href in menu.locator("a").evaluate_all("links => links.map(a => a.href)")]


def _overflows(page: Page) -> int:
    """How many pixels the page scrolls sideways (0: none)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _inner_links(page: Page) -> list[str]:
    hrefs = page.locator("main a[href]").evaluate_all("links => links.map(a => a.href)")
    return [urlsplit(h).path + (f"?{urlsplit(h).query}" if urlsplit(h).query else "") for h in hrefs
            if urlsplit(h).hostname == "127.0.0.1" and not NOT_PAGES.search(urlsplit(h).path)]


def _check(person: Person, path: str, axe: str, problems: list[str]) -> bool:
    """Visit `path` and record what is wrong with it; False if it is not a page (a download)."""
    page = person.page
    try:
        response = page.goto(person.vault.url(path))
    except Error as error:
        if "Download is starting" in str(error):
            return False
        raise
    if response is None or "text/html" not in (response.headers.get("content-type") or ""):
        return False
    assert response.status < 500, f"{person.name} {path}: {response.status}"
    width = _overflows(page)
    if width > 0:
        person.shot("overflow" + _kind(path).replace("/", "-"))
        problems.append(f"{person.name} {path}: scrolls {width} px sideways")
    page.evaluate(axe)
    found = page.evaluate("""async () => {
        const results = await axe.run(document, {resultTypes: ['violations']});
        return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                             nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    for violation in found:
        if violation["impact"] in SERIOUS:
            problems.append(f"{person.name} {path}: {violation['impact']} {violation['id']} "
                            f"({violation['help']}) at {violation['nodes']}")
    return True


def _the_checks_can_fail(person: Person, axe: str) -> None:
    """A page made too wide, and an image without a text alternative, are caught by the same checks."""
    page = person.page
    page.evaluate("""() => {
        const wide = document.createElement('div');
        wide.className = 'card';
        wide.appendChild(document.createElement('img'));
        wide.querySelector('img').src = '/static/none.png';
        wide.querySelector('img').width = 900;
        document.querySelector('main').appendChild(wide);
    }""")
    assert _overflows(page) > 0
    page.evaluate(axe)
    found = page.evaluate("async () => (await axe.run(document)).violations.map(v => [v.id, v.impact])")
    assert ["image-alt", "critical"] in found, found


@pytest.mark.timeout(600)  # the demo company is set up first (about 10 s)
def test_every_page_from_the_menus_fits_a_phone_and_passes_axe(vault: Vault, new_page: Callable[[], Page]) -> None:
    demo.seed(vault.rt)  # with its work in progress: requests, loans, a leaver and alerts to reflow
    axe = _axe_source()
    cast = Cast(vault, new_page)
    problems: list[str] = []
    visited: dict[str, int] = {}
    for name in PEOPLE:
        person = cast.window(name)
        person.password = demo.DEMO_PASSWORD
        person.page.set_viewport_size(PHONE)
        person.sign_in()
        person.shot("home")
        if name == PEOPLE[0]:
            _the_checks_can_fail(person, axe)
        seen: set[str] = set()
        menu = _open_menu(person)
        to_visit = list(dict.fromkeys(menu))
        for path in to_visit:
            seen.add(_kind(path))
        for path in list(to_visit):
            if not _check(person, path, axe, problems):
                continue
            person.shot("phone" + (_kind(path).rstrip("/").replace("/", "-") or "-home"))
            for inner in _inner_links(person.page):
                if _kind(inner) not in seen:
                    seen.add(_kind(inner))
                    to_visit.append(inner)
        for path in to_visit[len(menu):]:
            _check(person, path, axe, problems)
        visited[name] = len(to_visit)
        # The same menu pages on a desktop screen, where the menu is always shown and tables are tables.
        person.page.set_viewport_size(VIEWPORT)
        for path in menu:
            _check(person, path, axe, problems)
        expect(person.page.get_by_role("navigation", name="Main menu")).to_be_visible()
        person.page.close()
    assert not problems, "\n".join(problems)
    # Every person reached their menu's pages and the pages those lead to.
    assert all(count >= 3 for count in visited.values()), visited
    cast.assert_clean()
