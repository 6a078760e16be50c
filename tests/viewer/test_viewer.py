"""The viewer through the pages: post/redirect/get, stamped and marked page images bound to the view and
the person, never the original; heartbeats and the one closing record; refusals audited."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
from datetime import timedelta

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from tests.loans.helpers import page_url, set_rows, used, view_rows
from tests.marking.pages import several_streams
from tests.rendering.inputs import pdf_bytes
from tests.viewer.conftest import INSIDE, active_loan
from vault.core.context import AccessContext
from vault.marking import MarkingError, decode, trace
from vault.marking import pdf as pdf_module
from vault.models import DocumentVersion, DocumentView, Loan, LoanStatus, User, ViewStatus, utcnow
from vault.services import maintenance, viewer, views
from vault.services.documents import version_context
from vault.services.marking_key import marking_secret
from vault.services.renditions import read_page

PAGES = 3
CONTENT = pdf_bytes(PAGES)


def _open(world, doc, who="ann"):
    browser = world.browser(who, **INSIDE)
    opened = browser.open_view(doc)
    assert opened.status_code == 303, opened.get_data(as_text=True)[:500]
    return browser, opened.headers["Location"]


def _stored_pages(rt, doc):
    with rt.db.session() as session:
        from vault.models import Document

        version: DocumentVersion = session.get(Document, doc).versions[0]
        dek = rt.keyring.unwrap(version.key_id, version.wrapped_dek, version_context(version))
        return [Image.open(io.BytesIO(read_page(rt, dek, version.document_id, version.number, p.object_key,
                                                p.number))).convert("RGB") for p in version.pages]


def test_a_grade3_view_shows_stamped_pages_and_never_the_original(world, rt):
    doc = world.document(3, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    active_loan(world, doc)
    ann, location = _open(world, doc)
    page = ann.get(location)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "CONFIDENTIAL — GRADE 3" in html
    assert "Views left: 2" in html and "This view closes at" in html
    assert re.search(r"This view closes at \d{1,2}:\d{2}\W(AM|PM) UTC\.", html), "the time names its zone"
    assert 'loading="lazy"' in html and "download" not in html.lower().replace("downloads", "")
    assert html.count('class="page-image"') == PAGES
    [view] = view_rows(rt)
    assert view.status == ViewStatus.DELIVERING and view.window_ends_at is not None

    original = hashlib.sha256(CONTENT).hexdigest()
    bodies = [page]
    secret = marking_secret(rt.settings)
    stored = _stored_pages(rt, doc)
    for number in range(1, PAGES + 1):
        response = ann.get(page_url(page, number))
        bodies.append(response)
        assert response.status_code == 200
        assert response.mimetype == "image/jpeg"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Security-Policy"].startswith("sandbox")
        delivered = Image.open(io.BytesIO(response.get_data())).convert("RGB")
        assert decode(delivered, secret) == view.id  # the mark names this view on every page
        # The stamp is drawn on every page: the footer strip and the watermark differ from the plain page.
        difference = np.abs(np.asarray(delivered, dtype=np.int16) - np.asarray(stored[number - 1], dtype=np.int16))
        assert (difference[-25:] > 100).mean() > 0.01  # the footer strip's text
        assert (difference[:-40] > 30).mean() > 0.002  # the tiled watermark
    for response in bodies:
        assert hashlib.sha256(response.get_data()).hexdigest() != original
        assert response.mimetype not in ("application/pdf", "text/plain")

    # Reload and Back: the same view again, no second unit.
    assert ann.get(location).status_code == 200
    assert used(rt, world.ids["ann"], doc) == 1 and len(view_rows(rt)) == 1


def test_page_urls_are_bound_to_the_person_the_pages_and_the_window(world, rt):
    doc = world.document(1, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    ann, location = _open(world, doc)
    page = ann.get(location)
    audit = world.audit.mark()
    bob = world.browser("bob")
    assert bob.get(page_url(page, 1)).status_code == 404  # another person
    audit.one_refusal("view:page", "not_found", "bob")
    audit.mark()
    past_end = ann.get(page_url(page, PAGES + 1))
    assert past_end.status_code == 403
    audit.one_refusal("view:page", "page_not_found", "ann", document_id=doc)
    assert ann.get(page_url(page, 0)).status_code == 403
    forged = re.sub(r"/views/pages/[^/]+/", "/views/pages/forged.token/", page_url(page, 1))
    assert ann.get(forged).status_code == 404
    # After the window: refused, although the token itself is still within its time in this test.
    set_rows(rt, DocumentView, DocumentView.id == view_rows(rt)[0].id, window_ends_at=utcnow() - timedelta(seconds=1))
    audit.mark()
    assert ann.get(page_url(page, 1)).status_code == 403
    audit.one_refusal("view:page", "view_window_closed", "ann", document_id=doc)
    assert "This view has closed" in ann.get(location).get_data(as_text=True)


def test_a_page_is_refused_once_the_loan_it_was_opened_under_has_ended(world, rt):
    """The loan's status is read with every page: a view whose loan ended (here by its own time, with
    nothing having closed the view yet) shows no further page."""
    doc = world.document(2, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    active_loan(world, doc)
    ann, location = _open(world, doc)
    url = page_url(ann.get(location), 1)
    assert ann.get(url).status_code == 200
    [view] = view_rows(rt)
    assert view.loan_id is not None
    set_rows(rt, Loan, Loan.id == view.loan_id, status=LoanStatus.EXPIRED)
    audit = world.audit.mark()
    assert ann.get(url).status_code == 403
    audit.one_refusal("view:page", "view_window_closed", "ann", document_id=doc, loan_id=view.loan_id)


def test_a_page_costs_one_statement_and_no_audit_record(world, rt):
    from sqlalchemy import event

    doc = world.document(1, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    ann, location = _open(world, doc)
    url = page_url(ann.get(location), 2)
    ann.get(url)  # warm: the session's sign-in checks are not the page's cost
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    audit = world.audit.mark()
    event.listen(rt.db.engine, "before_cursor_execute", count)
    try:
        assert ann.get(url).status_code == 200
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", count)
    page_reads = [s for s in statements if "version_pages" in s]
    assert len(page_reads) == 1
    assert not any(s.lstrip().upper().startswith(("INSERT", "UPDATE")) for s in statements)
    assert audit.since("view:page") == [] and audit.since("content:delivered") == []


def test_heartbeats_record_time_and_pages_and_one_closing_record(world, rt):
    doc = world.document(1, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    ann, location = _open(world, doc)
    html = ann.get(location).get_data(as_text=True)
    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    [view] = view_rows(rt)
    set_rows(rt, DocumentView, DocumentView.id == view.id, last_seen_at=utcnow() - timedelta(seconds=15))
    beat = ann.client.post(f"/views/{view.id}/heartbeat", json={"pages_seen": 2}, headers={"X-CSRFToken": csrf})
    assert beat.status_code == 200
    assert beat.get_json()["pages_seen"] == 2 and 14 <= beat.get_json()["seconds_open"] <= 16
    assert ann.client.post(f"/views/{view.id}/heartbeat", json={"pages_seen": 1}).status_code == 400  # no CSRF
    assert world.browser("bob").client.post(f"/views/{view.id}/heartbeat", json={}).status_code in (400, 404)
    audit = world.audit.mark()
    for _ in range(2):
        closing = ann.client.post(f"/views/{view.id}/heartbeat", json={"pages_seen": 99, "closing": True},
                                  headers={"X-CSRFToken": csrf})
        assert closing.status_code == 200
    [record] = audit.since("view:close")
    detail = json.loads(record.detail)
    assert (detail["pages_seen"], detail["pages"], detail["cause"]) == (PAGES, PAGES, "closed")
    [view] = view_rows(rt)
    assert (view.pages_seen, view.status) == (PAGES, ViewStatus.DELIVERED) and view.closed_at is not None


def test_the_sweep_closes_lapsed_views_and_refunds_unused_ones(world, rt):
    doc = world.document(1, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    ann, location = _open(world, doc)
    ann.get(location)  # this one was read
    ann.open_view(doc)  # this one never reached its viewer
    first, second = view_rows(rt)
    set_rows(rt, DocumentView, DocumentView.id == first.id, window_ends_at=utcnow() - timedelta(seconds=1))
    set_rows(rt, DocumentView, DocumentView.id == second.id, expires_at=utcnow() - timedelta(seconds=1))
    audit = world.audit.mark()
    from vault.core.context import AccessContext

    with rt.db.session() as session:
        report = maintenance.run(rt, session, ctx=AccessContext.system("test"))
    assert (report.views_closed, report.views_refunded) == (1, 1)
    [closed] = audit.since("view:close")
    assert '"cause":"window_passed"' in closed.detail
    assert [v.status for v in view_rows(rt)] == [ViewStatus.DELIVERED, ViewStatus.REFUNDED]
    assert used(rt, world.ids["ann"], doc) == 1
    with rt.db.session() as session:
        assert viewer.close_lapsed(rt, session, ctx=AccessContext.system("test")) == 0  # once


def test_a_file_without_preview_cannot_be_read_where_downloads_are_forbidden(world, rt):
    doc = world.document(3, content=b"%PDF-1.7\n% unreadable\n%%EOF\n", name="broken.pdf",
                         content_type="application/pdf")
    active_loan(world, doc)
    refused = world.browser("ann", **INSIDE).open_view(doc)
    assert refused.status_code == 403 and "no preview" in refused.get_data(as_text=True)
    assert used(rt, world.ids["ann"], doc) == 0


def test_a_download_is_a_stamped_copy_that_traces_back(world, rt):
    doc = world.document(1, name="notes.txt")  # grade 1 allows downloads; originals stay in by default
    ann = world.browser("ann")
    response = ann.get(ann.download_link(doc))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="notes.pdf"')
    from tests.loans.helpers import TEXT
    from vault.marking import trace

    assert TEXT not in response.get_data()
    [view] = view_rows(rt)
    found = trace(response.get_data(), marking_secret(rt.settings))
    assert found is not None and found.view_id == view.id


@pytest.mark.parametrize(("name", "content"), [("notes.txt", None), ("plan.pdf", pdf_bytes(2))])
def test_a_large_copy_is_made_in_a_temporary_file_closed_with_the_delivery(world, rt, monkeypatch, name, content):
    """A copy too large for memory is written to a temporary file and streamed from it; the file is
    closed (and so removed) once the last byte has left."""
    made = []
    real = tempfile.TemporaryFile

    def recording(*args, **kwargs):
        file = real(*args, **kwargs)
        made.append(file)
        return file

    monkeypatch.setattr(views, "COPY_IN_MEMORY", 0)
    monkeypatch.setattr(tempfile, "TemporaryFile", recording)
    extra = {} if content is None else {"content": content, "content_type": "application/pdf"}
    doc = world.document(1, name=name, **extra)
    ann = world.browser("ann")
    response = ann.get(ann.download_link(doc))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    body = response.get_data()
    assert int(response.headers["Content-Length"]) == len(body) > 1000
    [view] = view_rows(rt)
    assert trace(body, marking_secret(rt.settings)).view_id == view.id
    assert made and all(file.closed for file in made)


def test_a_pdf_that_cannot_be_stamped_leaves_as_its_stamped_pages(world, rt, monkeypatch):
    """A PDF the stamping cannot take, but whose pages were drawn at upload, leaves as the PDF of those
    pages, stamped and traceable, from a file of the pages' expected size."""
    def refuse(*_args, **_kwargs):
        raise MarkingError("the file is not a readable PDF")

    monkeypatch.setattr(views, "write_stamped_pdf", refuse)
    doc = world.document(1, name="plan.pdf", content=pdf_bytes(2), content_type="application/pdf")
    assert len(traced_pdf_download(world, rt, doc).pages) == 2


def traced_pdf_download(world, rt, doc) -> PdfReader:
    """Ann's stamped download of ``doc``: a PDF that traces back to her one view."""
    ann = world.browser("ann")
    response = ann.get(ann.download_link(doc))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    body = response.get_data()
    [view] = view_rows(rt)
    assert trace(body, marking_secret(rt.settings)).view_id == view.id
    return PdfReader(io.BytesIO(body))


def test_a_pdf_whose_content_unpacks_too_large_leaves_as_its_stamped_pages(world, rt, monkeypatch):
    """Content streams that unpack beyond the limit are not unpacked further: the copy is the PDF of the
    pages drawn at upload, stamped and traceable (its page an image, not the original's content)."""
    monkeypatch.setattr(pdf_module, "MAX_JOINED_PAGE", 4096)
    drawing = b"0 0 1 rg 72 600 300 100 re f\n" * 100  # 2,900 bytes a stream
    doc = world.document(1, name="map.pdf", content=several_streams(drawing, drawing),
                         content_type="application/pdf")
    [page] = traced_pdf_download(world, rt, doc).pages
    assert [x["/Subtype"] for x in page["/Resources"]["/XObject"].values()] == ["/Image"]


def test_a_tiny_image_is_shown_on_paper_large_enough_for_the_stamp_and_the_mark(world, rt):
    tiny = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 30, 30)).save(tiny, format="PNG")
    doc = world.document(1, content=tiny.getvalue(), name="plan.png", content_type="image/png")
    ann, location = _open(world, doc)
    response = ann.get(page_url(ann.get(location), 1))
    assert response.status_code == 200
    delivered = Image.open(io.BytesIO(response.get_data()))
    assert delivered.width == 1240 and delivered.height >= 400
    assert decode(delivered.convert("RGB"), marking_secret(rt.settings)) == view_rows(rt)[0].id
    copy = ann.get(ann.download_link(doc))  # the stamped download of a tiny image works too
    assert copy.status_code == 200 and copy.mimetype == "image/png"


@pytest.mark.parametrize(("grade", "label"), [(1, "GENERAL — GRADE 1"), (2, "IMPORTANT — GRADE 2"),
                                              (3, "CONFIDENTIAL — GRADE 3")])
def test_the_banner_and_the_stamp_name_the_grade_the_file_has(world, rt, app, grade, label):
    """A grade-1 file was headed "CONFIDENTIAL — GRADE 1": the word of grade 3 on the least guarded files
    teaches readers to skip it. The banner and the stamp drawn on each page name the file's own grade."""
    doc = world.document(grade, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    if grade > 1:
        active_loan(world, doc)
    ann, location = _open(world, doc)
    page = ann.get(location)
    banner = re.search(r'id="grade-banner">\s*([^<]*)</p>', page.get_data(as_text=True))
    assert banner is not None and banner.group(1).strip() == label
    assert ("CONFIDENTIAL" in page.get_data(as_text=True)) == (grade == 3)

    token = page_url(page, 1).split("/views/pages/")[1].split("/")[0]
    with app.test_request_context(headers={"Accept-Language": "en"}), rt.db.session() as session:
        actor = session.get(User, world.ids["ann"])
        drawn = viewer.allow_page(rt, session, actor, token, 1, AccessContext(named_place="Head office"))
    assert drawn.stamp.grade_label == label
    assert drawn.stamp.footer_line().startswith(f"{label} · viewed by ")
    assert label in drawn.stamp.watermark_lines()


def test_a_download_page_names_the_grade_the_file_has(world):
    doc = world.document(1, name="notes.txt")
    ann = world.browser("ann")
    opened = ann.open_view(doc, download=True)
    html = ann.get(opened.headers["Location"]).get_data(as_text=True)
    assert "GENERAL — GRADE 1" in html and "CONFIDENTIAL" not in html


def test_the_way_back_to_the_document_is_offered_before_the_pages_too(world, rt):
    """The only link back sat below the last page: a reader of a long file scrolled through (and fetched)
    every page to leave. It comes before the pages too, and stays when the view has closed."""
    doc = world.document(1, content=CONTENT, name="plan.pdf", content_type="application/pdf")
    ann, location = _open(world, doc)
    html = ann.get(location).get_data(as_text=True)
    back = f'<a href="/documents/{doc}">Back to the document</a>'
    pages_start, pages_end = html.index('id="pages"'), html.rindex('class="page-image"')
    first = html.index(back)
    assert first < html.index("<h1>") < pages_start, "the way back comes before the title and the pages"
    assert html.rindex(back) > pages_end, "and still after the last page"
    assert html.count("<nav") == re.sub(r'<section class="viewer".*', "", html, flags=re.S).count("<nav")

    set_rows(rt, DocumentView, DocumentView.document_id == doc, window_ends_at=utcnow() - timedelta(minutes=1))
    closed = ann.get(location).get_data(as_text=True)
    assert 'id="view-closed"' in closed
    assert closed.index(back) < closed.index('id="view-closed"')
