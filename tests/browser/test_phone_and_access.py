"""Every page a person reaches from the menu, on a phone and through a screen reader's eyes.

The demo company is set up (its people in every role, thirty-six customers, seventy-two files) with
the work in progress it seeds, then each person signs in on a 390 px wide window, opens the folded menu
and visits every page it links to, and from each of those one page of every kind it links to (a customer, a document, a
loan, a person's trail). On each page: nothing may scroll sideways, and axe-core (the accessibility
engine, run inside the page) may find no serious or critical violation. The menu pages are checked
again at desktop width, where the layout differs.

Every page is loaded and measured; axe runs on each page made of something no page before it was made
of at that width (see `_MAKEUP`): a second customer's page, or another person's view of the same list,
would only give the same findings again, and axe is most of a page's cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
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
# What a page is made of: every distinct element as its tag, classes, role, type and the names of its
# attributes (not their values). Pages of one template showing other records or more rows are made of
# the same; an image without a text alternative, a field without its label, a form only one role sees,
# or another template altogether make something new, which axe then checks.
_MAKEUP = """() => {
  const parts = new Set();
  for (const el of document.querySelectorAll('*')) {
    parts.add([el.tagName, [...el.classList].sort().join('.'), el.getAttribute('role') || '',
               el.getAttribute('type') || '', el.getAttributeNames().sort().join(',')].join('|'));
  }
  return [...parts].sort().join('\\n');
}"""


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


@dataclass
class _Walk:
    """What the walk found wrong, what axe has checked (width, makeup), and the kinds of page shown."""

    problems: list[str] = field(default_factory=list)
    checked: set[tuple[int, str]] = field(default_factory=set)
    shown: set[str] = field(default_factory=set)


def _check(person: Person, path: str, axe: str, walk: _Walk) -> bool:
    """Visit `path` and record what is wrong with it; False if it is not a page (a download).

    Axe runs if the page is made of something no page checked before at this width was made of.
    """
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
        walk.problems.append(f"{person.name} {path}: scrolls {width} px sideways")
    makeup = (page.viewport_size or {}).get("width", 0), page.evaluate(_MAKEUP)
    if makeup in walk.checked:
        return True
    walk.checked.add(makeup)
    # One picture of each kind of page on the phone, as the first person to reach it saw it.
    if makeup[0] == PHONE["width"] and _kind(path) not in walk.shown:
        walk.shown.add(_kind(path))
        person.shot("phone" + (_kind(path).rstrip("/").replace("/", "-") or "-home"))
    page.evaluate(axe)
    found = page.evaluate("""async () => {
        const results = await axe.run(document, {resultTypes: ['violations']});
        return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                             nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    for violation in found:
        if violation["impact"] in SERIOUS:
            walk.problems.append(f"{person.name} {path}: {violation['impact']} {violation['id']} "
                                 f"({violation['help']}) at {violation['nodes']}")
    return True


def _the_checks_can_fail(person: Person, axe: str) -> None:
    """A page made too wide, and an image without a text alternative, are caught by the same checks."""
    page = person.page
    before = page.evaluate(_MAKEUP)
    page.evaluate("""() => {
        const wide = document.createElement('div');
        wide.className = 'card';
        wide.appendChild(document.createElement('img'));
        wide.querySelector('img').src = '/static/none.png';
        wide.querySelector('img').width = 900;
        document.querySelector('main').appendChild(wide);
    }""")
    assert _overflows(page) > 0
    # Axe is not skipped for it as for a page already checked: an image without alt makes a page anew.
    assert page.evaluate(_MAKEUP) != before
    page.evaluate(axe)
    found = page.evaluate("async () => (await axe.run(document)).violations.map(v => [v.id, v.impact])")
    assert ["image-alt", "critical"] in found, found


@pytest.mark.timeout(600)  # the demo company is set up first (about 10 s)
def test_every_page_from_the_menus_fits_a_phone_and_passes_axe(vault: Vault, new_page: Callable[[], Page]) -> None:
    demo.seed(vault.rt)  # with its work in progress: requests, loans, a leaver and alerts to reflow
    axe = _axe_source()
    cast = Cast(vault, new_page)
    walk = _Walk()
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
            if not _check(person, path, axe, walk):
                continue
            for inner in _inner_links(person.page):
                if _kind(inner) not in seen:
                    seen.add(_kind(inner))
                    to_visit.append(inner)
        for path in to_visit[len(menu):]:
            _check(person, path, axe, walk)
        visited[name] = len(to_visit)
        # The same menu pages on a desktop screen, where the menu is always shown and tables are tables.
        person.page.set_viewport_size(VIEWPORT)
        for path in menu:
            _check(person, path, axe, walk)
        expect(person.page.get_by_role("navigation", name="Main menu")).to_be_visible()
        person.page.close()
    assert not walk.problems, "\n".join(walk.problems)
    # Every person reached their menu's pages and the pages those lead to.
    assert all(count >= 3 for count in visited.values()), visited
    cast.assert_clean()
