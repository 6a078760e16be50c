"""The departure report's PDF with Cyrillic and Chinese names, places and reasons: every font is embedded,
every character has a real glyph (not the empty box of .notdef) in the font that draws it, and the text
extracts back equal."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdf
import pytest
from reportlab.pdfbase.ttfonts import TTFontFile

from tests.departure.conftest import OFFICE
from vault.services import report

NAMES = ("Общество «Северный ветер»", "上海明珠贸易有限公司", "Ёлкина Дарья Сергеевна", "深圳前海", "Новосибирск")


@pytest.fixture
def scripts_report(rt, company) -> bytes:
    russian = company.customer(NAMES[0], "vip")
    chinese = company.customer(NAMES[1])
    company.document(russian, grade=1, title="План визита — Новосибирск")
    plain = company.document(chinese, grade=1, title="报价单 深圳前海")
    company.view(plain, ctx=OFFICE, place="Новосибирск")
    with rt.db.session() as session:
        sam = company.user(session, "sam")
        sam.display_name = NAMES[2]
        session.commit()
    with rt.db.session() as session:
        data = report.produce(rt, session, company.user(session, "aud"), company.user(session, "sam"), fmt="pdf",
                              ctx=OFFICE)
        return report.pdf_bytes(data)


def _unicode_map(stream: bytes) -> dict[int, str]:
    """code → text from a ToUnicode CMap's bfchar entries (what reportlab writes)."""
    blocks = re.findall(rb"beginbfchar(.*?)endbfchar", stream, re.S)
    pairs = [pair for block in blocks for pair in re.findall(rb"<([0-9A-Fa-f]{2})>\s*<([0-9A-Fa-f]+)>", block)]
    return {int(code, 16): bytes.fromhex(text.decode()).decode("utf-16-be") for code, text in pairs}


def test_every_character_is_drawn_from_an_embedded_font_that_has_it(scripts_report: bytes, tmp_path: Path) -> None:
    reader = pypdf.PdfReader(io.BytesIO(scripts_report))
    covered: set[str] = set()
    for number, page in enumerate(reader.pages):
        for name, ref in page["/Resources"]["/Font"].items():
            font = ref.get_object()
            descriptor = font["/FontDescriptor"].get_object() if "/FontDescriptor" in font else None
            assert descriptor is not None and "/FontFile2" in descriptor, f"{font['/BaseFont']} is not embedded"
            path = tmp_path / f"{number}-{name.strip('/').replace('+', '_')}.ttf"
            path.write_bytes(descriptor["/FontFile2"].get_object().get_data())
            glyphs = TTFontFile(str(path)).charToGlyph  # the embedded subset: code → glyph
            for code, text in _unicode_map(font["/ToUnicode"].get_object().get_data()).items():
                if text.strip() and glyphs.get(code, 0) != 0:
                    covered.add(text)
    wanted = {ch for name in NAMES for ch in name if not ch.isspace()}
    assert wanted <= covered, f"drawn as empty boxes: {sorted(wanted - covered)}"


def test_the_names_extract_back_equal(scripts_report: bytes) -> None:
    pages = pypdf.PdfReader(io.BytesIO(scripts_report)).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())  # cells wrap at column ends
    for name in (*NAMES, "报价单 深圳前海"):
        assert name in text, name
    assert "■" not in text and "\ufffd" not in text


@pytest.mark.parametrize(("header", "words"), [
    ("ru", ("Отчёт об увольняющемся: Ёлкина Дарья Сергеевна (sam)", "Период анализа: 21 день",
            "Клиенты (2)", "Составил: Aud")),
    ("zh-CN", ("离职报告：Ёлкина Дарья Сергеевна（sam）", "回溯期：21 天", "客户（2）", "生成人：Aud")),
])
def test_the_report_is_written_in_the_readers_language(rt, app, company, scripts_report, header, words) -> None:
    with app.test_request_context(headers={"Accept-Language": header}), rt.db.session() as session:
        data = report.produce(rt, session, company.user(session, "aud"), company.user(session, "sam"), fmt="pdf",
                              lookback_days=21, ctx=OFFICE)
        pdf = report.pdf_bytes(data)
    text = " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages).split())
    for expected in words:
        assert expected in text, expected
