"""Text, Markdown and CSV: laid out with the project's fonts, escaped, never fetching anything."""

from __future__ import annotations

import io
import socket

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from vault.rendering import Limits, render
from vault.rendering.csv_layout import csv_to_pdf
from vault.rendering.fonts import CJK, MONO, SANS, font_for
from vault.rendering.markdown_layout import markdown_to_pdf

MULTILINGUAL = "Hello, world. Привет, мир. 你好，世界。こんにちは。안녕하세요."


def _pdf_text(data: bytes) -> list[str]:
    document = pdfium.PdfDocument(data)
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            text_page = page.get_textpage()
            texts.append(text_page.get_text_range())
            text_page.close()
            page.close()
        return texts
    finally:
        document.close()


def _layout(function, text: str) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    function(text, out, "test")
    return out.getvalue()


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Layout must never reach the network (a Markdown image or link is not fetched)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendering tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_the_fonts_cover_latin_cyrillic_and_cjk() -> None:
    assert {font_for(char) for char in "Hello Привет"} == {SANS}
    assert {font_for(char) for char in "你好世界こんにちは안녕"} == {CJK}
    assert font_for("Ж", MONO) == MONO


def _ink_bands(image: Image.Image) -> list[np.ndarray]:
    """The inked part of each text line on a page, as arrays cropped to their own bounding box."""
    grey = np.asarray(image.convert("L")) < 128
    rows = grey.any(axis=1)
    bands, start = [], None
    for y, inked in enumerate([*list(rows), False]):
        if inked and start is None:
            start = y
        elif not inked and start is not None:
            band = grey[start:y]
            columns = np.flatnonzero(band.any(axis=0))
            bands.append(band[:, columns[0]:columns[-1] + 1])
            start = None
    return bands


def test_cjk_and_cyrillic_glyphs_are_drawn_not_boxes() -> None:
    # Two private-use characters no installed font has are the control: they must come out as the
    # same "missing glyph" box. Real glyphs must differ from each other and from that box.
    lines = ["中", "文", "Ж", "П", "\ue000", "\ue001"]
    with render(io.BytesIO("\n\n".join(lines).encode()), "text/plain", "glyphs.txt") as rendition:
        page = next(rendition.pages())
    bands = _ink_bands(page.image)
    assert len(bands) == len(lines)
    shapes = [band.tobytes() + bytes(band.shape) for band in bands]
    missing_a, missing_b = shapes[4], shapes[5]
    assert missing_a == missing_b, "control failed: missing glyphs should look alike"
    real = shapes[:4]
    assert len(set(real)) == 4
    assert missing_a not in real


def test_plain_text_keeps_every_script_and_escapes_markup() -> None:
    text = f"{MULTILINGUAL}\n    indented <b>not bold</b> & <font face='x'>no</font>\n"
    with render(io.BytesIO(text.encode()), "text/plain", "notes.txt") as rendition:
        assert rendition.kind == "text" and rendition.page_count == 1
        page = next(rendition.pages())
        assert page.width == 1240
        laid_out = rendition._source._document  # the intermediate PDF, to read its text back
        text_page = laid_out[0].get_textpage()
        drawn = text_page.get_text_range()
    assert "Привет" in drawn and "你好" in drawn and "안녕하세요" in drawn
    assert "<b>not bold</b> & <font face='x'>no</font>" in drawn


def test_long_text_splits_across_pages() -> None:
    text = "\n".join(f"line {number} Строка 行" for number in range(400))
    with render(io.BytesIO(text.encode("utf-16")), "text/plain", "long.txt") as rendition:
        assert rendition.page_count >= 5
        assert len(list(rendition.pages())) == rendition.page_count


def test_markdown_table_script_and_image() -> None:
    source = (
        "# Heading Заголовок 标题\n\n"
        "Some *emphasis* and **bold** text with `code` and a [link](https://example.com/x).\n\n"
        "<script>alert('x')</script>\n\n"
        "![tracking pixel](https://example.com/pixel.png)\n\n"
        "| Name | City |\n|---|---|\n| Анна | Москва |\n| 李 | 北京 |\n\n"
        "1. first\n2. second\n\n> quoted\n\n```\ncode   block\n```\n"
    )
    data = _layout(markdown_to_pdf, source)
    drawn = _pdf_text(data)[0]
    assert "<script>alert('x')</script>" in drawn  # shown as the literal text it is
    assert "[image: tracking pixel]" in drawn
    assert "[https://example.com/x]" in drawn
    for cell in ("Name", "City", "Анна", "Москва", "李", "北京", "Заголовок", "标题", "first", "second"):
        assert cell in drawn
    assert "code" in drawn and "block" in drawn
    with render(io.BytesIO(source.encode()), "text/markdown", "readme.md") as rendition:
        assert rendition.kind == "markdown" and len(list(rendition.pages())) == 1


def test_csv_is_a_table_whose_header_repeats_on_every_page() -> None:
    rows = ["id;name;city"] + [f"{n};Имя {n};城市 {n}" for n in range(300)]
    data = _layout(csv_to_pdf, "\n".join(rows))
    pages = _pdf_text(data)
    assert len(pages) > 2
    for text in pages:
        assert "id" in text and "name" in text and "city" in text
    assert "Имя 299" in pages[-1] and "城市 299" in pages[-1]
    with render(io.BytesIO("\n".join(rows).encode()), "text/plain", "export.csv") as rendition:
        assert rendition.kind == "csv" and rendition.page_count == len(pages)


def test_csv_rows_beyond_the_limit_are_left_out_with_a_note() -> None:
    text = "\n".join(["n"] + [f"row {n}" for n in range(30)])
    with render(io.BytesIO(text.encode()), "text/csv", "a.csv", Limits(max_table_rows=11)) as rendition:
        drawn = rendition._source._document[0].get_textpage().get_text_range()
    assert "Only the first 11 of 31 rows are shown." in drawn
    assert "row 9" in drawn and "row 10" not in drawn


def test_ragged_and_unusual_csv_still_lays_out() -> None:
    text = 'a,b,c\n1\n"quoted, comma",2,3,4,5\n\n<b>,&amp;,\x07x\n'
    with render(io.BytesIO(text.encode()), "text/csv", "odd.csv") as rendition:
        assert rendition.has_preview and rendition.page_count == 1


def test_binary_or_oversized_text_has_no_preview() -> None:
    with render(io.BytesIO(b"\x00\x01\x02binary" * 100), "text/plain", "a.txt") as outcome:
        assert not outcome.has_preview and outcome.code == "rendition_failed"
    big = io.BytesIO(b"x" * 2048)
    with render(big, "text/plain", "a.txt", Limits(max_text_bytes=1024)) as outcome:
        assert not outcome.has_preview and "larger than" in outcome.reason


def test_unknown_types_have_no_preview() -> None:
    outcome = render(io.BytesIO(b"PK\x03\x04"), "application/zip", "archive.zip")
    assert not outcome.has_preview and outcome.code == "unsupported_type"
    assert list(outcome.pages()) == [] and outcome.page_count == 0
    assert not render(io.BytesIO(b"x"), "application/octet-stream", "noextension").has_preview
    assert render(io.BytesIO(b"x"), "application/octet-stream", "a.txt").has_preview


def test_cp1252_text_decodes() -> None:
    with render(io.BytesIO("Caf\u00e9 \u20ac".encode("cp1252")), "text/plain", "a.txt") as rendition:
        text_page = rendition._source._document[0].get_textpage()
        assert "Café €" in text_page.get_text_range()
