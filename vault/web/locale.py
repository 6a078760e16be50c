"""The language and time zone of a request, and the template filters that show dates, times and
numbers the way the reader's language writes them.

Language: the person's stored choice (account page), else the first language of the browser's
`Accept-Language` that vault has a catalogue for, else English. Time zone: the person's stored zone,
else the company's (VAULT_TIMEZONE). Dates and times are stored in UTC and converted only here, when
shown, so every page, whatever its language, shows the same instant.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import format_date, format_datetime, format_decimal, format_time, get_locale, ngettext, refresh
from sqlalchemy.exc import SQLAlchemyError

from vault.core import languages
from vault.services.uploads import human_size


def select_locale() -> str:
    """The catalogue for this request (Flask-Babel's locale selector)."""
    if not has_request_context():
        return languages.DEFAULT
    chosen = g.get("vault_page_locale")
    if chosen in languages.LANGUAGES:
        return chosen  # a page written for one reader (the link in a customer's letter, in its language)
    stored = _stored("locale")
    if stored in languages.LANGUAGES:
        return stored
    return languages.from_accept(list(request.accept_languages)) or languages.DEFAULT


def _stored(name: str) -> Any:
    """The signed-in person's stored choice, or None when it cannot be read.

    The error page of a database that went away asks for the language too: by then a failed flush has
    rolled the session back and expired the person's row, and reloading it fails again. That page must
    still be drawn (in the browser's language), not turn into an error of its own.
    """
    try:
        return getattr(g.get("vault_user"), name, None)
    except SQLAlchemyError:
        return None


def select_timezone() -> str:
    """The IANA zone dates and times are shown in (Flask-Babel's time zone selector)."""
    if has_request_context():
        stored = _stored("timezone")
        if stored and languages.valid_timezone(stored):
            return stored
    return current_app.extensions["vault"].settings.timezone or "UTC"


def speak(locale: str) -> None:
    """Answer this request in `locale` whatever the browser asks (the link page of a customer's letter
    speaks the letter's language)."""
    if locale in languages.LANGUAGES:
        g.vault_page_locale = locale
        refresh()


def html_lang() -> str:
    """The request's language as `<html lang>` wants it (`zh-Hans`, `ru`, `en`)."""
    return languages.html_lang(str(get_locale() or languages.DEFAULT))


def when(value: datetime | None, width: str = "medium") -> str:
    """A moment, in the reader's zone and language, with the zone named (`4 дек. 2026 г., 22:15 MSK`)."""
    if value is None:
        return "—"
    if width == "short":
        return format_datetime(value, "short")
    return format_datetime(value, width) + " " + format_datetime(value, "zzz")


def day(value: date | datetime | None, width: str = "medium") -> str:
    """A calendar date in the reader's language (`2026年12月4日`, `4 дек. 2026 г.`)."""
    if value is None:
        return "—"
    return format_date(value, width)


def clock(value: datetime | None) -> str:
    """A time of day in the reader's zone and language, the zone named (`16:27 MSK`): a reader in another
    office than the company's, or travelling, must not take the company's four o'clock for their own."""
    return "—" if value is None else format_time(value, "short") + " " + format_datetime(value, "zzz")


def number(value: float | int | None) -> str:
    """A number with the reader's digit grouping and decimal sign (`12,345.5`, `12 345,5`)."""
    return "—" if value is None else format_decimal(value)


def size(value: int | None) -> str:
    """A byte count in the reader's language: "878 bytes", "878 байт", "1,5 MiB" (binary units are
    written the same in every language vault speaks)."""
    if value is None:
        return ""
    if value < 1024:
        return ngettext("%(num)d byte", "%(num)d bytes", value)
    amount, unit = human_size(value).split(" ")
    return f"{format_decimal(float(amount))} {unit}"


def sentences(*texts: str) -> str:
    """Sentences one after the other as the reader's language writes them: Chinese ends each with a
    full-width stop and puts no space between them, the others one space."""
    locale = get_locale()
    return ("" if locale is not None and locale.language == "zh" else " ").join(texts)


def install(app: Flask) -> None:
    app.jinja_env.filters.update(when=when, day=day, clock=clock, number=number)

    @app.context_processor
    def _language() -> dict[str, Any]:
        return {"html_lang": html_lang()}
