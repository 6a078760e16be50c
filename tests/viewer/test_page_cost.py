"""What fetching one stamped page image costs the database, counted statement by statement on the engine.

The issue's goal: a page costs the view's grant, checked from the signed page token plus one row read
(the view with its person's document, version, page and loan); nothing is written for it, no audit
record above all (the view's closing record is the page flow's one append). Authentication is the
request's own cost: one statement for a session cookie (the person, their roles and the session's row
together); the API's page (bearer token look-up plus the same one read) is counted in
tests/api/test_content_statements.py. Refusals still write their audit record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import g
from sqlalchemy import event, func, select

from tests.loans.helpers import page_url
from tests.rendering.inputs import pdf_bytes
from tests.support.write_lock import writer_free
from tests.viewer.conftest import INSIDE
from vault.models import AuditEvent
from vault.services import viewer
from vault.web.pipeline import MAINTENANCE_KEY

CONTENT = pdf_bytes(2)
WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    """Every statement the engine runs inside the block (SQLite's explicit BEGIN left out)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def audit_rows(rt: Any) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def _page_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "document_views" in s]


def test_a_page_in_the_browser_costs_one_statement_besides_the_session(world, rt, app):
    doc = world.document(1, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    ann = world.browser("ann", **INSIDE)
    location = ann.open_view(doc).headers["Location"]
    url = page_url(ann.get(location), 2)
    assert ann.get(url).status_code == 200  # warm: first-request work of the session is not the page's
    app.extensions[MAINTENANCE_KEY] = float("inf")  # the once-a-minute sweep is not part of a page
    before = audit_rows(rt)
    for _ in range(3):  # every fetch, not only the first after warming
        with counted(rt.db.engine) as statements:
            response = ann.get(url)
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        # The grant: one row read. The session: one statement (the person, roles, session row).
        assert len(_page_reads(statements)) == 1, statements
        assert len(statements) <= 2, "\n".join(statements)
        assert not any(s.upper().startswith(WRITES) for s in statements), statements
    assert audit_rows(rt) == before  # no audit record per page


def test_refused_pages_still_write_their_audit_record(world, rt, app):
    doc = world.document(1, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    ann = world.browser("ann", **INSIDE)
    location = ann.open_view(doc).headers["Location"]
    shown = ann.get(location)
    app.extensions[MAINTENANCE_KEY] = float("inf")
    before = audit_rows(rt)
    assert ann.get(page_url(shown, 3)).status_code == 403  # past the end: page_not_found
    assert world.browser("bob").get(page_url(shown, 1)).status_code == 404  # another person's page
    assert audit_rows(rt) >= before + 2


@contextmanager
def drawing_watched(rt: Any, monkeypatch: Any) -> Iterator[list[tuple[bool, bool]]]:
    """While each page is drawn: (the request's session is inside a transaction, another writer could
    start one at once). On SQLite a transaction holds the write lock; on PostgreSQL a writer never waits."""
    seen: list[tuple[bool, bool]] = []
    draw = viewer.render_stamped

    def watched(*args: Any) -> bytes:
        seen.append((g.db_session.in_transaction(), writer_free(rt)))
        return draw(*args)

    monkeypatch.setattr(viewer, "render_stamped", watched)
    yield seen


def test_a_page_is_drawn_after_its_transaction_ends(world, rt, app, monkeypatch):
    """Drawing a page takes far longer than deciding it: drawn inside the request's transaction, every page
    of every viewer (and every other writer) would queue on SQLite's write lock behind it."""
    doc = world.document(1, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    ann = world.browser("ann", **INSIDE)
    url = page_url(ann.get(ann.open_view(doc).headers["Location"]), 1)
    with drawing_watched(rt, monkeypatch) as seen:
        assert ann.get(url).status_code == 200
    assert seen == [(False, True)]
