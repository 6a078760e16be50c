"""The greyscale page path: the same mark and the same stamp as the RGB path, in one channel.

Text pages are stored in greyscale; the viewer stamps them in place at the luma of the stamp's colours,
adds the mark from the view's cached delta image and encodes a one-channel JPEG. These tests hold it to
the RGB path it replaces and to the trace it must survive.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image

from tests.marking.conftest import SECRET, VIEW_ID
from vault.marking import StampText, decode, embed, embed_grey, stamp_grey_in_place, stamp_page
from vault.marking.forensic import ForensicError
from vault.services.viewer import render_stamped


def test_the_grey_mark_is_the_luma_of_the_rgb_mark(page: Image.Image) -> None:
    grey = page.convert("L")
    expected = np.asarray(embed(grey, VIEW_ID, SECRET).convert("L"))
    assert np.array_equal(np.asarray(embed_grey(grey, VIEW_ID, SECRET)), expected)
    assert np.asarray(grey).tobytes() == np.asarray(page.convert("L")).tobytes()  # the input is untouched


def test_the_grey_stamp_is_the_luma_of_the_rgb_stamp(page: Image.Image, stamp_text: StampText) -> None:
    grey = page.convert("L")
    expected = np.asarray(stamp_page(grey, stamp_text).convert("L"), dtype=np.int16)
    stamped = grey.copy()
    stamp_grey_in_place(stamped, stamp_text)
    difference = np.abs(np.asarray(stamped, dtype=np.int16) - expected)
    assert difference.max() <= 2  # rounding of the blend and of the colours' luma only
    assert (np.asarray(stamped) != np.asarray(grey)).mean() > 0.05  # and it did draw


def test_a_grey_page_is_delivered_grey_and_traces_after_jpeg_q75(page: Image.Image, stamp_text: StampText) -> None:
    stored = io.BytesIO()
    page.convert("L").save(stored, format="PNG", compress_level=3)
    delivered = Image.open(io.BytesIO(render_stamped(stored.getvalue(), stamp_text, SECRET)))
    assert delivered.format == "JPEG" and delivered.mode == "L" and delivered.size == page.size
    leak = io.BytesIO()
    delivered.save(leak, format="JPEG", quality=75)
    assert decode(Image.open(io.BytesIO(leak.getvalue())), SECRET) == VIEW_ID


def test_a_colour_or_small_page_keeps_the_rgb_path(page: Image.Image, stamp_text: StampText) -> None:
    for image in (page.convert("RGB"), page.convert("L").resize((200, 300))):
        stored = io.BytesIO()
        image.save(stored, format="PNG")
        delivered = Image.open(io.BytesIO(render_stamped(stored.getvalue(), stamp_text, SECRET)))
        assert delivered.mode == "RGB"


def test_the_grey_mark_refuses_what_it_cannot_carry(page: Image.Image) -> None:
    with pytest.raises(ForensicError):
        embed_grey(page.convert("RGB"), VIEW_ID, SECRET)
    with pytest.raises(ForensicError):
        embed_grey(page.convert("L").resize((100, 100)), VIEW_ID, SECRET)
    with pytest.raises(ForensicError):
        embed_grey(page.convert("L"), 1 << 48, SECRET)
    with pytest.raises(ValueError, match="L page"):
        stamp_grey_in_place(page.convert("RGB"), StampText("A", "a", datetime(2026, 1, 1, tzinfo=UTC), 1, "-", "G"))
