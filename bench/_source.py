"""Plaintext for benchmarks, produced on demand so that no benchmark holds a whole file in memory."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

MIB = 1 << 20


class GeneratedSource(io.RawIOBase):
    """``size`` bytes produced on demand from one random block: the data never exists whole."""

    def __init__(self, size: int) -> None:
        super().__init__()
        # An odd block length so block edges never line up with segment or part edges.
        self._block = os.urandom(MIB + 7)
        self._remaining = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._remaining)
        filled = 0
        while filled < count:
            start = self._position % len(self._block)
            part = min(count - filled, len(self._block) - start)
            view[filled : filled + part] = self._block[start : start + part]
            filled += part
            self._position += part
        self._remaining -= count
        return count


def photo_pdf() -> bytes:
    """A 4-page PDF of about 1 MiB: photo-like page images (smooth noise) as JPEG streams, the stamped
    copies' benchmark file."""
    rng = np.random.default_rng(7)
    pages = [Image.fromarray(rng.integers(0, 256, (150, 106, 3), dtype=np.uint8)).resize(
        (1240, 1754), Image.Resampling.BICUBIC) for _ in range(4)]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=150, quality=55)
    return out.getvalue()
