"""A PDF written object by object to a binary stream, for copies too large to hold in memory.

A stamped copy of a long rendition is hundreds of page images; written as they are made, a worker
holds one page at a time and the offsets of the objects written so far, whatever the page count.
"""

from __future__ import annotations

from typing import BinaryIO

HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"


class StreamingPdf:
    """Objects are numbered from 1 in the order they are reserved or added; `finish` writes the
    cross-reference table and the trailer. An object may be reserved first and written later (a page
    tree that must name its pages, which are written before it)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._offsets: dict[int, int] = {}
        self._count = 0
        self._position = 0
        self._write(HEADER)

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._position += len(data)

    def reserve(self) -> int:
        """A number for an object written later with `add(..., number=)`."""
        self._count += 1
        return self._count

    def add(self, body: bytes, number: int | None = None) -> int:
        """Write an object (``body`` is what goes between ``obj`` and ``endobj``); return its number."""
        if number is None:
            number = self.reserve()
        elif number in self._offsets or not 0 < number <= self._count:
            raise ValueError(f"object {number} was not reserved or is already written")
        self._offsets[number] = self._position
        self._write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
        return number

    def add_stream(self, entries: str, data: bytes) -> int:
        """A stream object: ``entries`` are its dictionary's entries without ``/Length``."""
        return self.add(f"<< {entries} /Length {len(data)} >>\nstream\n".encode("latin-1") + data + b"\nendstream")

    def finish(self, root: int, info: int | None = None) -> int:
        """Write the cross-reference table and trailer; return the file's size in bytes."""
        missing = [number for number in range(1, self._count + 1) if number not in self._offsets]
        if missing:
            raise ValueError(f"objects reserved but never written: {missing}")
        start = self._position
        rows = [f"xref\n0 {self._count + 1}\n0000000000 65535 f \n"]
        rows.extend(f"{self._offsets[number]:010d} 00000 n \n" for number in range(1, self._count + 1))
        trailer = f"trailer\n<< /Size {self._count + 1} /Root {root} 0 R"
        if info is not None:
            trailer += f" /Info {info} 0 R"
        rows.append(f"{trailer} >>\nstartxref\n{start}\n%%EOF\n")
        self._write("".join(rows).encode("ascii"))
        return self._position
