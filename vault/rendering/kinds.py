"""Which renderer a file goes to, decided from its declared media type and, failing that, its name."""

from __future__ import annotations

from pathlib import PurePosixPath

PDF = "pdf"
IMAGE = "image"
TEXT = "text"
MARKDOWN = "markdown"
CSV = "csv"
OFFICE_KINDS = ("docx", "xlsx", "pptx", "odt", "ods", "odp")

MEDIA_TYPES: dict[str, str] = {
    "application/pdf": PDF,
    "image/png": IMAGE,
    "image/jpeg": IMAGE,
    "image/webp": IMAGE,
    "image/tiff": IMAGE,
    "text/plain": TEXT,
    "text/markdown": MARKDOWN,
    "text/x-markdown": MARKDOWN,
    "text/csv": CSV,
    "application/csv": CSV,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
}

EXTENSIONS: dict[str, str] = {
    ".pdf": PDF,
    ".png": IMAGE, ".jpg": IMAGE, ".jpeg": IMAGE, ".webp": IMAGE, ".tif": IMAGE, ".tiff": IMAGE,
    ".txt": TEXT, ".text": TEXT, ".log": TEXT,
    ".md": MARKDOWN, ".markdown": MARKDOWN,
    ".csv": CSV,
    **{f".{kind}": kind for kind in OFFICE_KINDS},
}

# Declared types that say nothing about the content; the file name decides for these.
GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/x-download"}


def kind_of(media_type: str, filename: str) -> str | None:
    """The renderer for a file, or None when the viewer has none for it.

    A specific media type wins over the name (the upload sniffs or validates it); a generic one, or a
    text/plain that the name says is Markdown or CSV, defers to the extension.
    """
    declared = media_type.split(";", 1)[0].strip().lower()
    by_name = EXTENSIONS.get(PurePosixPath(filename.replace("\\", "/")).suffix.lower())
    if declared in GENERIC:
        return by_name
    kind = MEDIA_TYPES.get(declared)
    if kind == TEXT and by_name in (MARKDOWN, CSV):
        return by_name
    return kind
