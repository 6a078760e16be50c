"""The overlay's deflate stream of a repeated band: the same bytes as deflating the whole page."""

from __future__ import annotations

import os
import random
import zlib

import pytest

from vault.marking.pdf_overlay import _adler32_joined, _deflate_repeated


@pytest.mark.parametrize("band", [bytes(range(256)) * 1000, os.urandom(5000), b"\0" * 777],
                         ids=["patterned", "random", "zeros"])
def test_a_repeated_band_inflates_to_the_page(band: bytes) -> None:
    for size in (0, 5, len(band), len(band) * 3, len(band) * 3 + 17, len(band) * 7 - 1):
        assert zlib.decompress(_deflate_repeated(band, size)) == (band * 8)[:size]  # zlib checks the Adler-32


def test_joined_checksums_are_the_checksum_of_the_joined_bytes() -> None:
    rng = random.Random(3)
    for _ in range(500):
        first, second = rng.randbytes(rng.randint(0, 400)), rng.randbytes(rng.choice([0, 1, 65521, 70000]))
        assert _adler32_joined(zlib.adler32(first), zlib.adler32(second), len(second)) == zlib.adler32(first + second)
