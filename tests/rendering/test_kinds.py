"""Which renderer a file goes to: the declared type first, the name only when the type says nothing."""

from __future__ import annotations

import io

import pytest

from vault.rendering import Limits, PageRenderer, Renderer
from vault.rendering.kinds import kind_of


@pytest.mark.parametrize(
    ("media_type", "filename", "expected"),
    [
        ("application/pdf", "x.bin", "pdf"),
        ("APPLICATION/PDF; charset=binary", "x", "pdf"),
        ("application/octet-stream", "Scan.PDF", "pdf"),
        ("", "photo.jpeg", "image"),
        ("image/tiff", "a", "image"),
        ("text/plain", "notes.md", "markdown"),
        ("text/plain", "export.csv", "csv"),
        ("text/plain", "a.pdf", "text"),  # a specific declared type is not overridden by the name
        ("application/octet-stream", "C:\\Users\\x\\deck.pptx", "pptx"),
        ("application/vnd.oasis.opendocument.spreadsheet", "a", "ods"),
        ("application/zip", "a.docx", None),
        ("image/gif", "a.gif", None),
        ("application/octet-stream", "archive.tar.gz", None),
        ("application/octet-stream", "", None),
    ],
)
def test_kind_of(media_type: str, filename: str, expected: str | None) -> None:
    assert kind_of(media_type, filename) == expected


@pytest.mark.parametrize(
    "changes",
    [{"max_pages": 0}, {"page_width": -1}, {"convert_timeout": 0}, {"max_page_pixels": 1000}],
)
def test_limits_reject_nonsense(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Limits"):
        Limits(**changes)


def test_page_renderer_binds_the_limits() -> None:
    renderer = PageRenderer(Limits(max_text_bytes=10))
    assert isinstance(renderer, Renderer)
    with renderer.render(io.BytesIO(b"x" * 11), "text/plain", "a.txt") as outcome:
        assert not outcome.has_preview and "larger than" in outcome.reason
    with renderer.render(io.BytesIO(b"x" * 10), "text/plain", "a.txt") as rendition:
        assert rendition.has_preview and rendition.page_count == 1
