"""Plain text to PDF: one Paragraph per line, so long files split across pages and lines wrap."""

from __future__ import annotations

import re
from typing import BinaryIO

from reportlab.platypus import Flowable, Paragraph, Spacer

from vault.rendering.fonts import MONO, markup
from vault.rendering.layout import build_pdf, styles

_SPACES = re.compile(" {2,}")


def _line_markup(line: str) -> str:
    # Leading spaces carry indentation (code, aligned lists); Paragraph collapses them unless they are
    # non-breaking.
    stripped = line.lstrip(" ")
    return "&nbsp;" * (len(line) - len(stripped)) + keep_spaces(markup(stripped, MONO))


def keep_spaces(text_markup: str) -> str:
    """Keep runs of spaces inside a line (aligned columns) while still letting the line wrap at them."""
    return _SPACES.sub(lambda match: " " + "&nbsp;" * (len(match.group()) - 1), text_markup)


def text_to_pdf(text: str, out: BinaryIO, title: str) -> None:
    """Lay plain ``text`` out in a monospaced face, keeping line breaks and indentation."""
    style = styles()["code"]
    story: list[Flowable] = []
    for line in text.split("\n"):
        if line.strip():
            story.append(Paragraph(_line_markup(line), style))
        else:
            story.append(Spacer(1, style.leading))
    build_pdf(story, out, title)
