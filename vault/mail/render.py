"""Turning a mail template and its context into a subject, a plain-text body and an HTML body, in the
recipient's language.

Rendering runs wherever an event happens (a request, a command line, a listener), often with no Flask
request to ask for a locale, so it uses its own Jinja environment with the same gettext catalogues the
pages use (`vault/translations`, domain `messages`), one environment per language. A language without
a catalogue falls back to the English source strings. Templates live in `templates/mail/`:
`<name>.subject.txt`, `<name>.txt` and `<name>.html` (the HTML one autoescaped, extending `_layout.html`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from vault.core import alert_wording, languages

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
DEFAULT_LOCALE = "en"
MAX_SUBJECT = 300


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=16)
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,  # a missing value is a bug to catch in tests, not a blank in a mail
        extensions=["jinja2.ext.i18n"],
        keep_trailing_newline=False,
    )
    translations = Translations.load(str(TRANSLATIONS), [locale, DEFAULT_LOCALE], domain="messages")
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    # An alert's summary in the recipient's language (its stored English when it has no values).
    env.globals["alert_summary"] = lambda summary, params: alert_wording.sentence(summary, params, translations)
    return env


def link(base_url: str, path: str) -> str:
    """An absolute link when the public address is known (`VAULT_BASE_URL`), else the bare path."""
    return (base_url.rstrip("/") + path) if base_url else path


def render(name: str, context: dict[str, Any], *, locale: str | None, base_url: str) -> Rendered:
    """Render `templates/mail/<name>.*` for one recipient.

    `context` gets `link(path)` (absolute link) and `base_url` added.
    """
    env = environment(locale or DEFAULT_LOCALE)
    values = {"lang": languages.html_lang(locale or DEFAULT_LOCALE), **context, "base_url": base_url,
              "link": lambda path: link(base_url, path)}
    subject = " ".join(env.get_template(f"mail/{name}.subject.txt").render(values).split())
    text = env.get_template(f"mail/{name}.txt").render(values).strip() + "\n"
    html = env.get_template(f"mail/{name}.html").render(values)
    return Rendered(subject=subject[:MAX_SUBJECT], text=text, html=html)
