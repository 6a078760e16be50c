"""Every page a role reaches fits the screen in every language: nothing scrolls sideways and no element
sticks out of the viewport, on a desktop (1366 px) and a phone (390 px), in English, Chinese and Russian.

Chinese runs without spaces (a line breaks only where the browser may break it) and Russian words are
long: both find layouts that fit in English and overflow in theirs. The pages are those of the
language walk (tests/i18n/scene.py: the menu, the account page, a search, and one page of each kind
below them), found once with the application's test client, then each drawn by Chromium: one browser,
one signed-in window per role, the language switched by the Accept-Language header. In the same company,
the work queues' tables are measured for cells squeezed to one character a line.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Vault
from tests.browser.helpers import Cast
from tests.conftest import login
from tests.i18n import scene
from vault.services import demo

# The demo company is set up with its files drawn in this process (see the fixture).
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("demo_drawn_in_process")]

WIDTHS = (1366, 390)
LANGUAGES = ("en", "zh-CN", "ru")
# Containers meant to scroll sideways inside the page (a person's day strip, the departure report's
# wide tables): what is inside them may be wider than the screen, the container itself may not.
SCROLLERS = ".strip-scroll, .table-scroll"

# What sticks out: the page's own sideways scroll, then every visible element whose box leaves the
# viewport, unless a scrolling container (or an element clipping its content) holds it.
_OVERFLOW = """(scrollers) => {
  const width = window.innerWidth;
  const found = [];
  const scroll = document.scrollingElement.scrollWidth;
  if (scroll > width + 1) found.push(`the page is ${scroll} px wide`);
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (p.matches(scrollers)) return true;
      const style = getComputedStyle(p);
      if (['hidden', 'clip', 'auto', 'scroll'].includes(style.overflowX)) return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;
    if (box.right <= width + 1 && box.left >= -1) continue;
    if (clipped(el)) continue;
    const classes = typeof el.className === 'string' ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes.map((c) => '.' + c).join('');
    found.push(`${name} [${Math.round(box.left)}..${Math.round(box.right)}] "${(el.innerText || '').slice(0, 40)}"`);
    if (found.length > 4) break;
  }
  return found;
}"""


def _pages_of(vault: Vault, name: str) -> list[str]:
    """The walk's pages of one person, found with the test client (cheap: no browser)."""
    client = vault.app.test_client()
    login(client, name, demo.DEMO_PASSWORD)

    def get(path: str) -> tuple[int, str, str]:
        answer = client.get(path)
        return answer.status_code, answer.content_type or "", answer.get_data(as_text=True)

    return list(scene.walk(get, depth=4, extra=("/search/?q=Nordlicht",)))


def _overflow(page: Page) -> list[str]:
    return page.evaluate(_OVERFLOW, SCROLLERS)


def _the_check_can_fail(page: Page) -> None:
    """A block wider than the phone, and a long unbroken word, are both caught."""
    page.evaluate("""() => {
        const wide = document.createElement('div');
        wide.style.width = '900px';
        wide.textContent = 'x';
        document.querySelector('main').appendChild(wide);
    }""")
    assert _overflow(page), "a 900 px block on a 390 px screen was not caught"
    page.reload()
    page.evaluate("""() => {
        const word = document.createElement('span');
        word.style.whiteSpace = 'nowrap';
        word.textContent = 'Ответственный'.repeat(8);
        document.querySelector('main h1').appendChild(word);
    }""")
    assert _overflow(page), "an unbreakable line wider than the screen was not caught"
    page.reload()
    assert not _overflow(page)


@pytest.mark.timeout(900)  # the demo company is set up first (about 10 s)
def test_every_page_fits_the_screen_in_every_language(vault: Vault, new_page: Callable[[], Page]) -> None:
    demo.seed(vault.rt)  # with its work in progress: queues, a leaver and alerts to draw
    cast = Cast(vault, new_page)
    problems: list[str] = []
    drawn = 0
    kinds: set[str] = set()
    for name in scene.PEOPLE:
        # Each role's home and menu differ; below them, a page of a kind another role drew is skipped.
        paths = [path for path in _pages_of(vault, name) if path == "/" or scene.kind(path) not in kinds]
        kinds.update(scene.kind(path) for path in paths)
        person = cast.window(name)
        person.password = demo.DEMO_PASSWORD
        person.sign_in()
        page = person.page
        if name == scene.PEOPLE[0]:
            page.set_viewport_size({"width": 390, "height": 844})
            _the_check_can_fail(page)
        for language in LANGUAGES:
            page.context.set_extra_http_headers({"Accept-Language": language})
            widths = list(WIDTHS)
            for path in paths:
                # One load per page and language, drawn at both widths (a resize lays it out again); the
                # window is resized only when its width changes, once per page.
                response = page.goto(vault.url(path))
                assert response is not None and response.status < 500, (name, path)
                for width in widths:
                    if (page.viewport_size or {}).get("width") != width:
                        page.set_viewport_size({"width": width, "height": 900})
                    drawn += 1
                    found = _overflow(page)
                    if found:
                        person.shot(f"overflow-{language}-{width}{scene.kind(path).replace('/', '-')}")
                        problems.append(f"{name} {language} {width}px {path}: " + "; ".join(found))
                widths.reverse()  # the next page starts at the width this one ended at
        page.close()
    assert not problems, f"{len(problems)} of {drawn} pages stick out:\n" + "\n".join(problems)
    assert len(kinds) >= 30 and drawn >= len(kinds) * len(LANGUAGES) * len(WIDTHS), (drawn, sorted(kinds))
    _no_cell_of_a_work_queue_is_one_character_wide(vault, cast)
    cast.assert_clean()


# Cells whose text the browser broke into one character a line: every character on a line of its own.
# Chinese may break between any two characters, so a table squeezed for room gives its short cells their
# narrowest width, one character, before it narrows the long ones.
_ONE_CHARACTER_WIDE = """(selector) => {
  const found = [];
  for (const cell of document.querySelectorAll(selector)) {
    const lines = new Map();
    let characters = 0;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.textContent.length; i++) {
        if (/\\s/.test(node.textContent[i])) continue;
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const box = range.getBoundingClientRect();
        if (box.width <= 1 || box.height <= 1) continue;  // hidden (a label for screen readers)
        const line = Math.round(box.top);
        lines.set(line, (lines.get(line) || 0) + 1);
        characters += 1;
      }
    }
    if (characters > 1 && Math.max(...lines.values()) === 1) found.push(cell.innerText.trim().slice(0, 40));
  }
  return found;
}"""


# The work queues whose short cells (a count, a number of days, the link or button that acts) a table short
# of room may squeeze: who works each, its page, the table the demo fills, and every table measured.
QUEUES = (
    ("mia", "/loans/approvals", "table.queue", ("table.queue",)),
    # The custodian's release queue, where the demo leaves a grade-3 loan waiting for Tom; and the active loans.
    ("tom", "/loans/custody", "table.releases", ("table.releases", "table.active-loans")),
)


def _no_cell_of_a_work_queue_is_one_character_wide(vault: Vault, cast: Cast) -> None:
    """In Chinese the approvals queue's last column ("决定", Decide) stood one character a line on a 1280 px
    desktop: the table gave its room to the reason and the history and left the short cells their
    narrowest width. Every cell of each work queue (approvals, custody) keeps its words on a line, in every
    language, on a desktop; on a phone the table is one card per row and still nothing sticks out. One page
    load per queue and language, in the walk's demo company (its work in progress fills the queues)."""
    checked = False
    for name, path, table, measured in QUEUES:
        person = cast.window(name)
        person.password = demo.DEMO_PASSWORD
        person.sign_in()
        page = person.page
        page.set_viewport_size({"width": 1280, "height": 900})
        if not checked:
            page.evaluate("() => { const cell = document.createElement('td'); cell.textContent = '决定';"
                          " const row = document.createElement('tr'); row.appendChild(cell);"
                          " const table = document.createElement('table'); table.className = 'probe';"
                          " table.style.width = '1px'; table.appendChild(row);"
                          " document.querySelector('main').appendChild(table); }")
            assert page.evaluate(_ONE_CHARACTER_WIDE, "table.probe td") == ["决定"], "the check cannot fail"
            checked = True
        for language in LANGUAGES:
            page.context.set_extra_http_headers({"Accept-Language": language})
            page.set_viewport_size({"width": 1280, "height": 900})
            response = page.goto(vault.url(path))
            assert response is not None and response.status == 200
            assert page.locator(f"{table} tbody tr").count() > 0, f"the demo's work is in {path}"
            cells = ", ".join(f"{each} th, {each} td" for each in measured)
            squeezed = page.evaluate(_ONE_CHARACTER_WIDE, cells)
            if squeezed:
                person.shot(f"{path.rsplit('/', 1)[-1]}-squeezed-{language}")
            assert not squeezed, (path, language, squeezed)
            page.set_viewport_size({"width": 390, "height": 844})
            assert not _overflow(page), (path, language, _overflow(page))
        page.close()
