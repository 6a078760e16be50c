"""Drawing in a child process: the same outcomes as drawing in the process, and bounds that hold whatever
the drawing does (a form field drawn in one call that cannot pause, an allocation past the cap)."""

from __future__ import annotations

import errno
import io
import os
import tempfile
import time
from pathlib import Path

import pikepdf
import pytest
from flask_babel.speaklater import LazyString

from tests.rendering.inputs import pdf_bytes, slow_field, slow_pages
from tests.support.planted import Planted
from vault.core.forked import Send
from vault.rendering import EncryptedDocument, Limits, NoPreview, RenditionFailed, isolated, render
from vault.rendering.errors import TooManyPages
from vault.rendering.isolated import IsolatedRenderer

PDF = "application/pdf"
# Quick limits for the tests: the whole drawing may take a second; the office conversion (none here) less.
QUICK = {"convert_timeout": 0.5, "render_seconds": 1.0}


def test_a_child_draws_the_same_pages_as_the_process() -> None:
    data = pdf_bytes(3)
    with render(io.BytesIO(data), PDF, "a.pdf") as here:
        expected = [(page.number, page.width, page.height, page.media_type, page.encode()) for page in here.pages()]
    with IsolatedRenderer().render(io.BytesIO(data), PDF, "a.pdf") as there:
        assert (there.kind, there.page_count) == ("pdf", 3)
        drawn = [(page.number, page.width, page.height, page.media_type, page.encode()) for page in there.pages()]
    assert drawn == expected


def test_a_refusal_in_the_child_is_the_same_refusal() -> None:
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf_bytes(1))) as pdf:
        pdf.save(out, encryption=pikepdf.Encryption(user="u", owner="o"))
    with pytest.raises(EncryptedDocument) as caught:
        IsolatedRenderer().render(io.BytesIO(out.getvalue()), PDF, "locked.pdf")
    assert caught.value.code == "encrypted_document"


def test_a_file_with_no_preview_starts_no_child() -> None:
    outcome = IsolatedRenderer().render(io.BytesIO(b"\0" * 10), "application/octet-stream", "blob.bin")
    assert isinstance(outcome, NoPreview) and outcome.code == "unsupported_type"


def test_a_form_field_that_draws_for_seconds_is_stopped_at_the_time_limit() -> None:
    data = slow_field(4000)
    # In the process the field's one call runs to its end, whatever the page's deadline (finding).
    started = time.monotonic()
    with render(io.BytesIO(data), PDF, "form.pdf", Limits(page_draw_seconds=0.3)) as here:
        assert len(list(here.pages())) == 1
    assert time.monotonic() - started > 1.5
    # In a child, the drawing is killed at its time and the file is kept without a preview.
    started = time.monotonic()
    with IsolatedRenderer(Limits(page_draw_seconds=0.3, **QUICK)).render(io.BytesIO(data), PDF, "form.pdf") \
            as there, pytest.raises(RenditionFailed, match="took too long"):
        list(there.pages())
    assert time.monotonic() - started < 1.8


def test_a_drawing_past_its_time_before_the_first_page_has_no_preview() -> None:
    started = time.monotonic()
    outcome = IsolatedRenderer(Limits(**{**QUICK, "render_seconds": 0.6})).render(
        io.BytesIO(slow_pages(3000)), PDF, "slow.pdf")
    # The child measures and sends the page count before drawing, so this one ends inside `pages`.
    with outcome, pytest.raises(RenditionFailed, match="took too long"):
        list(outcome.pages())
    assert time.monotonic() - started < 1.5


def test_a_drawing_that_allocates_past_its_cap_fails_and_leaves_the_server_whole() -> None:
    # A page drawn 10,000 pixels wide is some 560 MB of bitmap, past a cap of 256 MiB on the whole process.
    wide = Limits(page_width=10_000, max_page_pixels=200_000_000, render_memory=256 << 20)
    outcome = IsolatedRenderer(wide).render(io.BytesIO(pdf_bytes(1)), PDF, "a.pdf")
    if isinstance(outcome, NoPreview):  # it failed before its page count was sent
        assert outcome.code == "rendition_failed"
    else:
        with outcome, pytest.raises(RenditionFailed):
            list(outcome.pages())
    with IsolatedRenderer().render(io.BytesIO(pdf_bytes(1)), PDF, "a.pdf") as again:
        assert len(list(again.pages())) == 1  # the next drawing is unaffected


def test_limits_leave_the_conversion_its_time() -> None:
    with pytest.raises(ValueError, match="convert_timeout"):
        Limits(convert_timeout=60, render_seconds=60)


def test_a_drawing_that_sends_what_it_never_sends_leaves_the_file_without_a_preview(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    planted = tmp_path / "planted"

    def taken_over(handed: object, media_type: str, filename: str, limits: Limits, send: Send) -> None:
        send(("pages", "pdf", 1))
        send(("page", 1, 1240, 1754, "image/png", Planted(str(planted))))

    monkeypatch.setattr(isolated, "_draw", taken_over)
    with IsolatedRenderer().render(io.BytesIO(pdf_bytes(1)), PDF, "a.pdf") as there, \
            pytest.raises(RenditionFailed) as caught:
        list(there.pages())
    assert "sent what it never sends" in str(caught.value.message)
    assert not planted.exists()


def test_a_drawing_sends_its_errors_and_lazy_texts_back() -> None:
    # What a drawing does send (its errors, with texts translated when shown) is read back as it was.
    with pytest.raises(TooManyPages) as caught:
        IsolatedRenderer(Limits(max_pages=2)).render(io.BytesIO(pdf_bytes(3)), PDF, "a.pdf")
    assert isinstance(caught.value.args[0], LazyString)  # still to be translated for whoever reads it
    assert str(caught.value.message) == "The file has 3 pages; at most 2 can be shown."


def test_a_drawing_cannot_change_the_bytes_the_upload_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    # The upload draws from the file it then encrypts and stores: a taken-over drawing must not rewrite it.
    def taken_over(handed: object, media_type: str, filename: str, limits: Limits, send: Send) -> None:
        try:
            os.pwrite(handed, b"<html>", 0)  # type: ignore[arg-type]
            outcome = "written"
        except OSError as exc:
            outcome = f"refused {exc.errno}"
        send(("none", "pdf", "test", outcome))

    monkeypatch.setattr(isolated, "_draw", taken_over)
    data = pdf_bytes(1)
    with tempfile.TemporaryFile() as upload:
        upload.write(data)
        outcome = IsolatedRenderer().render(upload, PDF, "a.pdf")
        upload.seek(0)
        assert upload.read() == data
    assert isinstance(outcome, NoPreview) and outcome.reason == f"refused {errno.EBADF}"
