"""Counts take the plural form of their language: a count written "view(s)" cannot be translated (Russian
has three forms: 1 просмотр, 2 просмотра, 5 просмотров), so no message of the catalogue may use it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from babel.messages.pofile import read_po
from flask import render_template_string
from flask_babel import ngettext

from tests.i18n.test_catalogues import catalogues
from vault.web import locale

BRACKETED = re.compile(r"[a-z]\(s\)")  # "view(s)", not the placeholder "%(s)d"


def test_no_message_writes_a_plural_as_s_in_brackets() -> None:
    with catalogues.TEMPLATE.open("rb") as handle:
        ids = [m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id]
    written = [text for text in ids if BRACKETED.search(text)]
    assert written == []


# A word with an ending in brackets: "прочитал(а)", "уволен(а)", "файл(ы)". In Chinese no word changes with its
# reader, so a bracket there holds words of its own ("（可选）"), which stay.
BRACKETED_ENDING = re.compile(r"[а-яё]\([а-яё]{1,3}\)", re.IGNORECASE)


@pytest.mark.parametrize("language", ["ru", "zh_Hans"])
def test_no_translation_writes_a_word_with_its_ending_in_brackets(language: str) -> None:
    """The Russian catalogue wrote the reader's or a named person's gender as "Я прочитал(а) причину" (and a dozen
    more): the house rule forbids bracketed forms, which read as a form to fill in, not a sentence. Each now says
    it without them ("Причина прочитана")."""
    path = catalogues.CATALOGUES / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        written = [text for m in read_po(handle) if m.id
                   for text in (m.string if isinstance(m.string, tuple) else (m.string,))
                   if text and BRACKETED_ENDING.search(text)]
    assert written == []


@pytest.mark.parametrize(("n", "text"), [(1, "1 просмотр"), (2, "2 просмотра"), (5, "5 просмотров"),
                                         (21, "21 просмотр"), (24, "24 просмотра"), (111, "111 просмотров")])
def test_russian_views_take_their_three_forms(app: Any, n: int, text: str) -> None:
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        assert ngettext("%(num)d view", "%(num)d views", n) == text


def test_a_borrowers_history_on_the_loan_page_is_counted_in_russian(app: Any) -> None:
    """The line the approver reads, built by the loan page's own macro (one loan, two views, five refusals)."""
    source = (app.jinja_env.loader.get_source(app.jinja_env, "loans/show.html")[0]
              .split("{% macro counts(h) -%}", 1)[1].split("{%- endmacro %}", 1)[0])
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        line = render_template_string(source, h={"loans": 1, "views": 2, "refusals": 5})
        assert line == "1 прежняя заявка на выдачу, 2 просмотра, 5 отказов"
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert render_template_string(source, h={"loans": 1, "views": 2, "refusals": 5}) == \
            "此前借阅申请 1 次，查看 2 次，被拒 5 次"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert render_template_string(source, h={"loans": 1, "views": 2, "refusals": 1}) == \
            "1 earlier loan request, 2 views, 1 refusal"


@pytest.mark.parametrize(("header", "sizes"), [
    ("en", ["1 byte", "878 bytes", "1.5 KiB"]),
    ("ru", ["1 байт", "878 байт", "1,5 KiB"]),
    ("zh-CN", ["1 字节", "878 字节", "1.5 KiB"]),
])
def test_file_sizes_are_written_the_readers_way(app: Any, header: str, sizes: list[str]) -> None:
    with app.test_request_context(headers={"Accept-Language": header}):
        assert [locale.size(n) for n in (1, 878, 1536)] == sizes
        assert locale.size(None) == ""
