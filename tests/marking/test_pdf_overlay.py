"""The overlay: its mark's deflate stream inflates to the whole page, and a view's part made ahead is that view's."""

from __future__ import annotations

import io
import os
import random
import zlib
from dataclasses import replace

import pytest

from tests.marking.conftest import SECRET
from vault.marking import StampText, stamp_pdf, view_overlay, write_stamped_pdf
from vault.marking.pdf_overlay import BAND_PIECE_ROWS, DeflatedBand, _adler32_joined


@pytest.mark.parametrize(("band", "row"), [(bytes(range(256)) * 1000, 1000), (os.urandom(5000), 100),
                                           (b"\0" * 777, 7), (os.urandom(4096), 4096)],
                         ids=["patterned", "random", "zeros", "one row"])
def test_a_repeated_band_inflates_to_the_page(band: bytes, row: int) -> None:
    deflated = DeflatedBand(band, row)
    rows = len(band) // row
    cuts = {0, 1, BAND_PIECE_ROWS - 1, BAND_PIECE_ROWS, BAND_PIECE_ROWS + 1, rows - 1, rows, rows * 3,
            rows * 3 + 17, rows * 7 - 1}
    for height in sorted(cut for cut in cuts if cut >= 0):
        assert zlib.decompress(deflated.repeated(height)) == (band * (height // rows + 1))[:height * row]  # Adler too


def test_a_band_is_whole_rows() -> None:
    with pytest.raises(ValueError, match="whole number of rows"):
        DeflatedBand(b"\0" * 10, 3)


def test_joined_checksums_are_the_checksum_of_the_joined_bytes() -> None:
    rng = random.Random(3)
    for _ in range(500):
        first, second = rng.randbytes(rng.randint(0, 400)), rng.randbytes(rng.choice([0, 1, 65521, 70000]))
        assert _adler32_joined(zlib.adler32(first), zlib.adler32(second), len(second)) == zlib.adler32(first + second)


@pytest.fixture(scope="module")
def stamped(source_pdf: bytes, stamp_text: StampText) -> bytes:
    return stamp_pdf(source_pdf, stamp_text, SECRET)


def test_an_overlay_made_ahead_makes_the_same_copy(source_pdf: bytes, stamp_text: StampText, stamped: bytes) -> None:
    out = io.BytesIO()
    write_stamped_pdf(source_pdf, stamp_text, SECRET, out, view_overlay(stamp_text, SECRET))
    assert out.getvalue() == stamped


def test_an_overlay_is_for_its_own_view_only(source_pdf: bytes, stamp_text: StampText) -> None:
    other = view_overlay(replace(stamp_text, view_id=stamp_text.view_id + 1), SECRET)
    with pytest.raises(ValueError, match="another view"):
        write_stamped_pdf(source_pdf, stamp_text, SECRET, io.BytesIO(), other)
