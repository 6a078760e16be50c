"""The languages vault speaks, and how a language tag a browser or a person gives maps onto one.

Kept in core so the account service (which validates a person's choice), the web layer (which picks
the language of a request) and the mail renderer (which writes in the recipient's language) share one
list. Catalogues live in `vault/translations/<code>/LC_MESSAGES/messages.po`; `zh_Hans` is Simplified
Chinese, the script subtag being what tells it from Traditional.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DEFAULT = "en"
LANGUAGES: tuple[str, ...] = ("en", "zh_Hans", "ru")
"""Catalogue codes, as Babel spells them (language_Script)."""

# Each language's own name, shown in the account page's choice (a person finds their language even
# when the page is in one they cannot read).
NATIVE_NAMES: dict[str, str] = {"en": "English", "zh_Hans": "简体中文", "ru": "Русский"}

# Accept-Language tags (lower case) → catalogue. Chinese without a script or region, and the regions
# that write Simplified characters, get zh_Hans; a Traditional reader also gets it rather than English.
_TAGS: dict[str, str] = {
    "en": "en",
    "ru": "ru",
    "zh": "zh_Hans",
    "zh-hans": "zh_Hans",
    "zh-cn": "zh_Hans",
    "zh-sg": "zh_Hans",
    "zh-hans-cn": "zh_Hans",
    "zh-hant": "zh_Hans",
    "zh-tw": "zh_Hans",
    "zh-hk": "zh_Hans",
}


def from_tag(tag: str | None) -> str | None:
    """The catalogue for a language tag (`zh-CN`, `zh_Hans`, `ru-RU`, `en-GB`), or None if vault lacks it."""
    if not tag:
        return None
    value = tag.strip().replace("_", "-").lower()
    if value in _TAGS:
        return _TAGS[value]
    primary = value.split("-", 1)[0]
    if primary == "zh":
        return "zh_Hans"
    return _TAGS.get(primary)


def from_accept(header_values: list[tuple[str, float]]) -> str | None:
    """The first language the browser lists (by quality, then order) that vault speaks."""
    ranked = sorted(enumerate(header_values), key=lambda item: (-item[1][1], item[0]))
    for _index, (tag, quality) in ranked:
        if quality <= 0:
            continue
        found = from_tag(tag)
        if found is not None:
            return found
    return None


def html_lang(code: str) -> str:
    """The BCP 47 tag for `<html lang>` (`zh-Hans`, not Babel's `zh_Hans`)."""
    return code.replace("_", "-")


def valid_timezone(name: str) -> bool:
    """True for an IANA zone name such as Europe/Moscow or Asia/Shanghai."""
    if not name or len(name) > 64 or name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def N_(text: str) -> str:
    """Mark `text` for the catalogue without translating it: tables of plain English kept as data (rule
    titles, notification kinds), translated with `_()` where they are shown, in the reader's language."""
    return text
