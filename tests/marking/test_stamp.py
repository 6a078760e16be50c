"""The visible stamp: present on every part of every page, and naming the viewer legibly."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.marking.conftest import SECRET
from tests.marking.pages import render
from vault.marking import StampText, fonts, stamp_page, stamp_pdf
from vault.marking.fonts import font_name_for, has_cjk
from vault.marking.stamp import footer_height


def changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(after, dtype=int) - np.asarray(before, dtype=int)).sum(axis=2) > 0


def assert_stamped(before: Image.Image, after: Image.Image, dark: int = 2000) -> None:
    """Every 300 x 300 region of the body shows watermark pixels; the footer strip holds ``dark`` pixels
    of text, or more."""
    diff = changed(before, after)
    body_height = after.height - footer_height(after.width)
    for top in range(0, body_height - 300, 300):
        for left in range(0, after.width - 300, 300):
            assert diff[top : top + 300, left : left + 300].any(), f"no stamp near ({left}, {top})"
    footer = np.asarray(after.convert("L"))[body_height:]
    assert changed(before.crop((0, body_height, after.width, after.height)),
                   after.crop((0, body_height, after.width, after.height))).sum() > 2000
    assert (footer < 100).sum() > dark, "the footer strip has no dark text"


def test_page_stamp_covers_the_page(page: Image.Image, stamp_text: StampText) -> None:
    assert_stamped(page, stamp_page(page, stamp_text))


def test_footer_shows_the_viewer_name(page: Image.Image, stamp_text: StampText) -> None:
    """The footer of two viewers differs where the name is drawn, and only the names differ."""
    other = replace(stamp_text, viewer_name="Boris Petrov (Борис)")
    strip = footer_height(page.width)
    mine = stamp_page(page, stamp_text).crop((0, page.height - strip, page.width, page.height))
    theirs = stamp_page(page, other).crop((0, page.height - strip, page.width, page.height))
    assert changed(mine, theirs).sum() > 200


def test_stamp_leaves_the_input_untouched(page: Image.Image, stamp_text: StampText) -> None:
    before = np.asarray(page).copy()
    stamp_page(page, stamp_text)
    assert np.array_equal(np.asarray(page), before)


def test_stamped_pdf_has_the_stamp_on_every_page(source_pdf: bytes, stamp_text: StampText) -> None:
    plain = render(source_pdf)
    stamped = render(stamp_pdf(source_pdf, stamp_text, SECRET))
    assert len(stamped) == len(plain) == 2
    for before, after in zip(plain, stamped, strict=True):
        # PDFium draws an image smaller than the page half a pixel off and blends neighbours, so the
        # footer's text comes out softer than on a page image: fewer pixels as dark as the ink.
        assert_stamped(before, after, dark=1200)


def test_cjk_names_get_a_cjk_font(page: Image.Image, stamp_text: StampText) -> None:
    name = "陈静"
    assert has_cjk(name) and not has_cjk("Анна")
    assert font_name_for(name) == "NotoSansCJK-Regular.ttc"
    assert font_name_for("Анна") == "DejaVuSans.ttf"
    stamped = stamp_page(page, replace(stamp_text, viewer_name=name))
    assert_stamped(page, stamped)


def test_naive_time_and_bad_id_are_refused(stamp_text: StampText) -> None:
    with pytest.raises(ValueError, match="timezone"):
        replace(stamp_text, viewed_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="view_id"):
        replace(stamp_text, view_id=1 << 48)


def test_view_reference_format(stamp_text: StampText) -> None:
    assert stamp_text.view_ref == "5ec0-1234-abcd"
    assert "2026-12-04 18:44:08 UTC" in stamp_text.footer_line()


def test_without_installed_fonts_the_stamp_still_appears(
    page: Image.Image, stamp_text: StampText, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fonts, "FONT_DIRS", (tmp_path,))
    text = replace(stamp_text, viewer_name="Fallback Font Viewer")
    assert font_name_for(text.viewer_name) == "default"
    assert_stamped(page, stamp_page(page, text))
