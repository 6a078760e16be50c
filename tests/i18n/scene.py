"""The scene the language walks run on: the demo company (its people in every role, Chinese and Russian
colleagues and customers, files, records) with the work in progress it seeds, so that lists have rows,
queues have requests, the departures desk has a leaver and the alerts desk has alerts. Built once per
module: it costs about as much as the walk itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, String, select

from tests.conftest import FAST_HASH
from vault.config.settings import load_settings
from vault.models import Base
from vault.runtime import Runtime
from vault.services import demo, demo_content, demo_records

# One person per role, and a sales manager (a borrower with a team below her); HR is the administrator.
PEOPLE = ("eva", "hana", "nora", "ines", "mia", "oskar", "admin")
# Links that download a file, leave the pages a person reads, or act (they are checked elsewhere).
NOT_PAGES = re.compile(r"/content/|/manifest|/export|/download|/logout|\.(csv|jsonl|pdf|png|json)$|^/api/|^/static/")
# A code as stored (a status, a role, a severity): the interface must show it in words.
CODE = re.compile(r"[a-z0-9_:.-]+")
# Pages of one kind ("/customers/12" and "/customers/13") are visited once.
_NUMBER = re.compile(r"\d+")


def kind(path: str) -> str:
    """The kind of a page: its path with every number replaced, and its query's parameter names."""
    base, _, query = path.partition("?")
    names = sorted(part.split("=", 1)[0] for part in query.split("&") if part)
    return _NUMBER.sub("N", base) + ("?" + "&".join(names) if names else "")


def build(data_dir: Path, database_url: str, keyring: Path) -> Runtime:
    """The demo company on a fresh database, with its work in progress (`vault.services.demo_work`): loans
    waiting for a decision and a release, an active loan, a person on notice and open alerts."""
    settings = demo.with_loopback_trusted(load_settings(
        {"data_dir": data_dir, "database_url": database_url, "keyring": keyring,
         "secret_key": "test-secret-key", **FAST_HASH}, environ={}))
    rt = Runtime.build(settings)
    rt.store.ensure_ready()
    demo.seed(rt)
    return rt


def menu_links(page: str) -> list[str]:
    """The paths the main menu links to, in order."""
    found = re.search(r'<nav id="main-menu"[^>]*>(.*?)</nav>', page, re.S)
    assert found, "no main menu on the home page"
    return list(dict.fromkeys(re.findall(r'href="([^"]+)"', found.group(1))))


def inner_links(page: str) -> list[str]:
    """The local links inside the page's <main>, without downloads and actions."""
    found = re.search(r"<main\b[^>]*>(.*?)</main>", page, re.S)
    if not found:
        return []
    links = [href.replace("&amp;", "&") for href in re.findall(r'<a\b[^>]*href="(/[^"#]*)"', found.group(1))]
    return [link for link in links if not NOT_PAGES.search(link.split("?", 1)[0])]


def walk(get: Any, *, depth: int = 2, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Every page of the signed-in person's menu, and from those (to `depth` clicks) one page of every
    kind they link to: {path: html}. `get(path)` answers (status, content type, html)."""
    status, _type, home = get("/")
    assert status == 200, status
    seen: dict[str, str] = {}
    kinds: set[str] = set()
    level = list(dict.fromkeys([*menu_links(home), "/account", *extra]))
    for _ in range(depth):
        following: list[str] = []
        for path in level:
            if kind(path) in kinds:
                continue
            kinds.add(kind(path))
            status, content_type, text = get(path)
            assert status < 500, (path, status)
            if status != 200 or "text/html" not in content_type:
                continue
            seen[path] = text
            following += inner_links(text)
        level = following
    return seen


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


# Stored columns whose text pages show translated, so they are no data for the allow-list.
INTERFACE = frozenset({("alerts", "summary"), ("alerts", "summary_params")})


def data_texts(rt: Runtime) -> set[str]:
    """Every text the scene's people and the demo wrote: each string stored in the database, and the
    demo company's records (kept sealed there). This is data, not interface: it stays as written."""
    texts: set[str] = set()
    with rt.db.session() as session:
        for table in Base.metadata.sorted_tables:
            # An alert's summary is shown from its sentence id and values in the reader's language (the
            # stored English is the record, not what a person reads): it is interface, checked like any.
            columns = [c for c in table.columns if isinstance(c.type, (String, JSON))
                       and (table.name, c.name) not in INTERFACE]
            if columns:
                for row in session.execute(select(*columns)):
                    for value in row:
                        texts.update(_strings(value))
    for spec in demo_content.CUSTOMERS:
        texts.update(_strings(demo_records.record_for(spec).values))
    for module in (demo_content, demo_records):
        for value in vars(module).values():
            texts.update(_strings(value))
    texts.update(user.display_name for user in demo.USERS)
    texts.update(place.name for place in rt.settings.trusted_places)
    # Codes (a status, a role, a channel) are stored as codes but shown in words: not data.
    return {t for t in texts if t.strip() and not CODE.fullmatch(t)}
