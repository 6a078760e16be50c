"""The fonts text layout uses, and the choice of font per run of text.

reportlab draws with one font at a time and has no fallback, and it reads only TrueType-outline fonts
(the Noto CJK collections have CFF outlines and are refused). So two families are registered:

* ``VaultSans`` / ``VaultMono``: DejaVu Sans and DejaVu Sans Mono (Debian ``fonts-dejavu-core``), for
  Latin, Greek and Cyrillic;
* ``VaultCJK``: WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``, Apache-2.0), a TrueType-outline
  font with Chinese, Japanese kana and Korean Hangul; it has no bold face, so bold CJK is drawn regular.

:func:`markup` splits user text into runs and wraps each run that the base font lacks in a
``<font face=...>`` tag naming the first family that has every glyph of it, after escaping the text for
reportlab's Paragraph mini-markup.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from vault.rendering.errors import RenditionFailed

SANS = "VaultSans"
MONO = "VaultMono"
CJK = "VaultCJK"

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/local/share/fonts"))

# family -> (regular, bold) file names, searched for under FONT_DIRS; (name, subfont index).
_FILES: dict[str, tuple[tuple[str, int], tuple[str, int]]] = {
    SANS: (("dejavu/DejaVuSans.ttf", 0), ("dejavu/DejaVuSans-Bold.ttf", 0)),
    MONO: (("dejavu/DejaVuSansMono.ttf", 0), ("dejavu/DejaVuSansMono-Bold.ttf", 0)),
    CJK: (("wqy/wqy-microhei.ttc", 0), ("wqy/wqy-microhei.ttc", 0)),
}


def _find(relative: str) -> Path:
    extra = os.environ.get("VAULT_FONT_DIR")
    for base in ((Path(extra),) if extra else ()) + FONT_DIRS:
        candidate = base / relative
        if candidate.is_file():
            return candidate
    raise RenditionFailed(f"The font {relative} is not installed, so text cannot be laid out.")


@functools.cache
def register_fonts() -> None:
    """Register the families with reportlab once per process (a RenditionFailed if a font is missing)."""
    for family, ((regular, regular_index), (bold, bold_index)) in _FILES.items():
        pdfmetrics.registerFont(TTFont(family, str(_find(regular)), subfontIndex=regular_index))
        pdfmetrics.registerFont(TTFont(f"{family}-Bold", str(_find(bold)), subfontIndex=bold_index))
        # <b> and <i> inside a Paragraph look the face up through these mappings. There is no italic
        # face installed, so italics are drawn upright (the text stays readable; emphasis is lost).
        addMapping(family, 0, 0, family)
        addMapping(family, 0, 1, family)
        addMapping(family, 1, 0, f"{family}-Bold")
        addMapping(family, 1, 1, f"{family}-Bold")


@functools.cache
def _coverage(family: str) -> frozenset[int]:
    register_fonts()
    font = pdfmetrics.getFont(family)
    return frozenset(font.face.charToGlyph)


def font_for(char: str, base: str = SANS) -> str:
    """The first family, ``base`` then CJK, that has a glyph for ``char`` (``base`` if none has)."""
    code = ord(char)
    if code in _coverage(base) or char.isspace():
        return base
    if code in _coverage(CJK):
        return CJK
    return base


def markup(text: str, base: str = SANS) -> str:
    """``text`` escaped for a Paragraph, with every run ``base`` cannot draw set in a font that can."""
    out: list[str] = []
    run: list[str] = []
    run_font = base

    def flush() -> None:
        if run:
            chunk = escape("".join(run))
            out.append(chunk if run_font == base else f'<font face="{run_font}">{chunk}</font>')
            run.clear()

    for char in text:
        font = font_for(char, base)
        if font != run_font:
            flush()
            run_font = font
        run.append(char)
    flush()
    return "".join(out)
