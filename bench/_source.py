"""Plaintext for benchmarks, produced on demand so that no benchmark holds a whole file in memory."""

from __future__ import annotations

import io
import os

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
