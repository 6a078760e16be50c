"""Plaintext sources and ciphertext layout helpers shared by the crypto tests."""

from __future__ import annotations

import io

from crypto.stream import HEADER_SIZE, TAG_SIZE


class PatternSource(io.RawIOBase):
    """``size`` bytes of a repeating non-trivial pattern, generated on demand.

    Lets memory tests stream tens of MiB without the plaintext ever existing in memory.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self._block = bytes(range(256)) * 256 + b"vault"  # odd length: chunks never align with segments
        self._remaining = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
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


class TrickleSource(io.RawIOBase):
    """Returns at most ``step`` bytes per call, as a pipe or a socket may."""

    def __init__(self, data: bytes, step: int = 3) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        return self._data.readinto(view[: self._step])


class ReadOnlySource:
    """A minimal stream with ``read`` only (no ``readinto``), returning short reads."""

    def __init__(self, data: bytes, step: int = 5) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int) -> bytes:
        return self._data.read(min(size, self._step))


def split_segments(ciphertext: bytes, segment_size: int) -> tuple[bytes, list[bytes]]:
    """Cut a ciphertext into its header and its segments, following the wire format."""
    header, body = ciphertext[:HEADER_SIZE], ciphertext[HEADER_SIZE:]
    segments = [body[: segment_size - HEADER_SIZE]]
    body = body[segment_size - HEADER_SIZE :]
    while body:
        segments.append(body[:segment_size])
        body = body[segment_size:]
    return header, segments


def first_plaintext_size(segment_size: int) -> int:
    return segment_size - HEADER_SIZE - TAG_SIZE
