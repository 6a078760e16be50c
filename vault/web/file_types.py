"""A file's type in words for lists ("PDF", "Word", "Spreadsheet"), from its latest version's media type."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

# The media types uploads accept most often; anything else is shown by its subtype.
_LABELS: dict[str, object] = {
    "application/pdf": _l("PDF"),
    "application/msword": _l("Word"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _l("Word"),
    "application/vnd.oasis.opendocument.text": _l("Text document"),
    "application/vnd.ms-excel": _l("Spreadsheet"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _l("Spreadsheet"),
    "application/vnd.oasis.opendocument.spreadsheet": _l("Spreadsheet"),
    "application/vnd.ms-powerpoint": _l("Slides"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _l("Slides"),
    "text/plain": _l("Text"),
    "text/csv": _l("CSV"),
    "text/markdown": _l("Markdown"),
}


def label(content_type: str | None) -> str:
    """The type in words; "no file yet" for a document without a version."""
    if not content_type:
        return str(_l("no file yet"))
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _LABELS:
        return str(_LABELS[media])
    major, _sep, minor = media.partition("/")
    if major == "image":
        return str(_l("Image (%(kind)s)", kind=minor.upper()))
    return minor or media
