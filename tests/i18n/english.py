"""Finding English left on a page meant to be read in Chinese or Russian.

The page's visible text is taken the way a reader meets it: text nodes outside <script>, <style> and
<template>, and the attribute texts a browser shows or reads aloud (placeholder, title, aria-label, alt,
and the value of a button). From it the allow-list takes out what is not the interface's to translate:
proper names and codes, and the scene's own data (written by its people, in whatever language they
wrote). Any Latin word left is English the interface forgot to translate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from html.parser import HTMLParser

# Attributes whose text the reader sees or hears.
SHOWN_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt", "aria-description", "label")
_HIDDEN = ("script", "style", "template")
_BUTTON_INPUTS = ("submit", "button", "reset")
WORD = re.compile(r"[A-Za-z][A-Za-z'’]*[A-Za-z]|[A-Za-z]")

# What is not English though written in Latin letters. Each entry says why; extend it the same way.
ALLOWED_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"(?<![\w-])(en|ru|zh_Hans)(?=[\s,)|、）]|$)",
     "the language codes the record form's contact lines take (the cell that picks the letters' language)"),
    (r"\b[A-Z][A-Za-z_]+/[A-Za-z_/+-]+", "IANA time zone names (Europe/Moscow)"),
    (r"[\w.+•-]+@[\w-]+(\.[\w-]+)+", "e-mail addresses, masked or not"),
    (r"\b\w•+", "masked names and numbers (the first letter, then dots)"),
    (r"\b[a-z_]+:([a-z_]+|\*)", "audit action codes: matched by machines, kept as recorded (GLOSSARY.md)"),

    (r"https?://\S+", "web addresses"),
    (r"\b[\w-]+\.(pdf|csv|md|txt|png|jpe?g|docx?|xlsx?|pptx?|odt|ods|zip|jsonl|json)\b", "file names"),
    (r"\.[a-z]{2,8}\b", "file name extensions (the accepted formats)"),
    (r"\b[a-z]+(_[a-z]+)+\b", "reason codes (not_permitted): codes machines match on stay English (GLOSSARY.md)"),
    (r"\b[0-9a-f]{12,}\b", "hashes and key fingerprints"),
    (r"\b(?=[\w-]*\d)[A-Za-z0-9_-]{2,}\b", "ids and codes with a digit (D-12, v3, S2, departure-1)"),
    (r"\bwxid_\w+|@tg\w+", "messaging ids of the demo contacts"),
    (r"\b(UTC|GMT|EUR|USD|CNY|RUB|ISO)\b", "time zone and currency codes"),
    (r"\b(KB|KiB|MB|MiB|GB|GiB|px|pt|dpi)\b", "units"),
    (r"\b(JSON Lines|PDF|CSV|PNG|JPEG|SVG|JSON|JSONL|HTML|TOTP|OTP|API|URL|HTTP|HTTPS|S3|SSO|ID|IP|CIDR|SHA|"
     r"HMAC|AES|GCM|HKDF|MAC|QR|WebP|Markdown|Tink|Bearer|OpenAPI|WebAuthn|CSRF|SMTP|LibreOffice|Noto|Chromium)\b",
     "formats, protocols and products: their own names in every language"),
    (r"\b[Vv]ault\b", "the product's name"),
    (r"\b(WhatsApp|Telegram|WeChat|whatsapp|telegram|wechat|Signal|signal)\b", "messaging services' names"),
    (r"\b[\w.-]+/\d[\w.]*", "programs' names and versions in the recorded user agent"),
    (r"\b(English|Русский|中文)\b", "each language's own name, as the language menu shows it"),
    (r"\bVIP\b", "what Chinese and Russian sales offices call their top customers too (GLOSSARY.md)"),
    (r"(?<![A-Za-z-])[Ee]-mail\b", "the Russian office word for e-mail («e-mail», as Russian style guides allow)"),
)


# Texts allowed only as a whole text, never inside a sentence. Each entry says why.
ALLOWED_TEXTS: tuple[tuple[str, str], ...] = (
    ("system", "the actor name the audit log records for vault's own scheduled acts"),
    ("vault-cli", "the actor name recorded for the operator's command line"),
    ("cli", "the channel recorded for the operator's command line"),
)


class _Texts(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
            return
        values = dict(attrs)
        for name in SHOWN_ATTRIBUTES:
            if values.get(name):
                self.texts.append(values[name] or "")
        if values.get("value") and (tag == "button" or (tag == "input" and values.get("type") in _BUTTON_INPUTS)):
            self.texts.append(values["value"] or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.texts.append(data.strip())


def visible_texts(page: str) -> list[str]:
    """The texts of `page` a reader sees or hears, one per text node or shown attribute."""
    parser = _Texts()
    parser.feed(page)
    parser.close()
    return parser.texts


def _recorded_details(text: str) -> bool:
    """An audit record's details, shown as the JSON they were recorded as (keys are codes)."""
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


class AllowList:
    """Proper names and codes (the patterns above), and the scene's data: whole texts taken out first,
    longest first, so a name inside a sentence goes while the sentence's words stay."""

    def __init__(self, data: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        phrases = sorted({d.strip() for d in data if d and len(d.strip()) >= 2}, key=len, reverse=True)
        self.whole = set(phrases) | {text for text, _why in ALLOWED_TEXTS}
        # Short data words would hide interface words that happen to match; they count only whole.
        inner = [re.escape(p) for p in phrases if len(p) >= 6]
        self._inner = re.compile(r"(?<!\w)(" + "|".join(inner) + r")(?!\w)") if inner else None
        words = sorted(set(names), key=len, reverse=True)
        self._names = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b") if words else None
        self._patterns = [re.compile(pattern, re.I if "?=" not in pattern else 0) for pattern, _why in ALLOWED_PATTERNS]

    def strip(self, text: str) -> str:
        if text in self.whole or _recorded_details(text):
            return ""
        if self._names is not None:
            text = self._names.sub(" ", text)
        if self._inner is not None:
            text = self._inner.sub(" ", text)
        for pattern in self._patterns:
            text = pattern.sub(" ", text)
        return text


def english_left(page: str, allow: AllowList) -> list[str]:
    """The English words of `page` once the allow-list has taken out names and codes, sorted."""
    return sorted({w for text in visible_texts(page) for w in WORD.findall(allow.strip(text))})
