"""Fonts for the visible stamp, chosen by the script of the text they must draw.

Pillow has no font fallback: a font without a glyph draws an empty box, so a Chinese name in DejaVu
would stamp nothing legible. Each piece of text therefore gets a font that covers its script, looked
up among the Debian font packages scripts/bootstrap.sh installs (fonts-dejavu-core, fonts-noto-core,
fonts-noto-cjk). Without any of them the stamp still appears, in Pillow's built-in font.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from PIL import ImageFont

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
_CJK_FILE = "opentype/noto/NotoSansCJK-Regular.ttc"
_CJK_SC_INDEX = 2  # faces in the collection: 0 JP, 1 KR, 2 SC, 3 TC, 4 HK
_LATIN_FILES = ("truetype/dejavu/DejaVuSans.ttf", "truetype/noto/NotoSans-Regular.ttf")
# Scripts DejaVu Sans lacks, each with the Noto face that has it (Latin digits included).
_SCRIPT_FILES: tuple[tuple[int, int, str], ...] = (
    (0x0900, 0x097F, "truetype/noto/NotoSansDevanagari-Regular.ttf"),
    (0x0980, 0x09FF, "truetype/noto/NotoSansBengali-Regular.ttf"),
    (0x0E00, 0x0E7F, "truetype/noto/NotoSansThai-Regular.ttf"),
)
_CJK_RANGES = (
    (0x1100, 0x11FF), (0x2E80, 0x2FDF), (0x3000, 0x30FF), (0x3100, 0x31FF), (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF),
    (0x20000, 0x2FA1F),
)

FreeFont = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _character_class(ranges: tuple[tuple[int, int], ...]) -> re.Pattern[str]:
    """One regular expression for the code point ranges: a stamp looks up every line it draws, and a
    per-character loop in Python cost more than drawing the line."""
    return re.compile("[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges) + "]")


_CJK = _character_class(_CJK_RANGES)
_SCRIPTS = tuple((_character_class(((lo, hi),)), relative) for lo, hi, relative in _SCRIPT_FILES)


def has_cjk(text: str) -> bool:
    """True when ``text`` holds a Chinese, Japanese or Korean character."""
    return _CJK.search(text) is not None


def _find(relative: str) -> Path | None:
    return _located(FONT_DIRS, relative)


@functools.lru_cache(maxsize=64)
def _located(dirs: tuple[Path, ...], relative: str) -> Path | None:
    """The first installed copy of a font file; kept, since the font packages do not change under a
    running server (a test that points FONT_DIRS elsewhere gets its own answers)."""
    for base in dirs:
        path = base / relative
        if path.is_file():
            return path
    return None


def _choice(text: str) -> tuple[str, int] | None:
    """(relative font file, face index) for ``text``, or None when no installed font fits."""
    if has_cjk(text) and _find(_CJK_FILE):
        return _CJK_FILE, _CJK_SC_INDEX
    for script, relative in _SCRIPTS:
        if script.search(text) is not None and _find(relative):
            return relative, 0
    for relative in _LATIN_FILES:
        if _find(relative):
            return relative, 0
    return None


@functools.lru_cache(maxsize=32)
def _load(relative: str | None, index: int, size: int) -> FreeFont:
    if relative is not None:
        path = _find(relative)
        if path is not None:
            try:
                return ImageFont.truetype(str(path), size, index=index)
            except OSError:
                pass
    return ImageFont.load_default(size)


def font_for(text: str, size: int) -> FreeFont:
    """A font of ``size`` pixels that draws every character of ``text`` we know how to cover."""
    choice = _choice(text)
    if choice is None:
        return _load(None, 0, size)
    return _load(choice[0], choice[1], size)


def font_name_for(text: str) -> str:
    """The font file :func:`font_for` uses for ``text`` ("default" for Pillow's own), for reports and tests."""
    choice = _choice(text)
    return "default" if choice is None else Path(choice[0]).name
