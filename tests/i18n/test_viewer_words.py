"""The viewer's banner and the stamp on every page speak the reader's language: no English word is left
in the stamp's footer line or its tiled watermark, only the facts (name, login, time in UTC, view id,
place), which read the same in every language."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.i18n.english import AllowList, english_left
from vault.models import DocumentView, User
from vault.services import viewer

FACTS = ("Eva Kowalski", "Head office")


def _as_page(lines: list[str]) -> str:
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


@pytest.mark.parametrize("header", ["zh-CN", "ru"])
@pytest.mark.parametrize("grade", [1, 2, 3])
def test_the_banner_and_the_stamp_have_no_english_left(app: Any, header: str, grade: int) -> None:
    view = DocumentView(id=42, named_place="Head office", opened_at=datetime(2026, 12, 4, 22, 15, tzinfo=UTC))
    person = User(username="eva", display_name="Eva Kowalski")
    with app.test_request_context(headers={"Accept-Language": header}):
        stamp = viewer.stamp_text(view, person, grade)
        lines = [viewer.grade_label(grade), stamp.footer_line(), *stamp.watermark_lines()]
    assert english_left(_as_page(lines), AllowList(FACTS, names=["eva"])) == [], lines
    assert "Eva Kowalski (eva)" in stamp.footer_line() and "2026-12-04 22:15:00 UTC" in stamp.footer_line()


def test_in_english_the_check_sees_the_stamps_words(app: Any) -> None:
    view = DocumentView(id=42, named_place="Head office", opened_at=datetime(2026, 12, 4, 22, 15, tzinfo=UTC))
    with app.test_request_context(headers={"Accept-Language": "en"}):
        stamp = viewer.stamp_text(view, User(username="eva", display_name="Eva Kowalski"), 2)
        assert {"viewed", "by", "view", "IMPORTANT", "GRADE"} <= set(
            english_left(_as_page([stamp.footer_line()]), AllowList(FACTS, names=["eva"])))
