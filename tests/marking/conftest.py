"""Shared pages for the marking tests: rendered once per session, because rendering and marking cost time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from PIL import Image

from tests.marking.pages import text_pages, text_pdf
from vault.marking import StampText, embed

SECRET = b"marking-test-secret"
VIEW_ID = 0x5EC0_1234_ABCD


@pytest.fixture(scope="session")
def stamp_text() -> StampText:
    return StampText(viewer_name="Anna Ivanova (Анна)", login="aivanova",
                     viewed_at=datetime(2026, 12, 4, 18, 44, 8, tzinfo=UTC), view_id=VIEW_ID,
                     place="Head office", grade_label="CONFIDENTIAL — GRADE 3")


@pytest.fixture(scope="session")
def source_pdf() -> bytes:
    return text_pdf(pages=2, seed=11)


@pytest.fixture(scope="session")
def page() -> Image.Image:
    return text_pages(pages=1, seed=5)[0]


@pytest.fixture(scope="session")
def marked_page(page: Image.Image) -> Image.Image:
    return embed(page, VIEW_ID, SECRET)
