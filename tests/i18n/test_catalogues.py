"""The catalogues are complete and current: extracting the texts again gives exactly the messages the
catalogues hold, and each language has every message translated, none fuzzy, with the same
placeholders as the English."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)")


def _catalogues() -> ModuleType:
    spec = importlib.util.spec_from_file_location("catalogues", ROOT / "scripts" / "catalogues.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


catalogues = _catalogues()


def _keys(path: Path) -> set[tuple[str | None, str]]:
    with path.open("rb") as handle:
        return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in read_po(handle) if m.id}


def test_the_catalogues_hold_exactly_what_the_sources_say(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.pot"
    catalogues.extract(fresh)
    wanted = _keys(fresh)
    for path in (catalogues.TEMPLATE, *(catalogues.CATALOGUES / lang / "LC_MESSAGES" / "messages.po"
                                       for lang in catalogues.LANGUAGES)):
        held = _keys(path)
        new = sorted(wanted - held)[:10]
        assert not new, f"{path.name}: new texts (run scripts/catalogues.py extract): {new}"
        assert not held - wanted, f"{path.name}: texts gone from the sources: {sorted(held - wanted)[:10]}"


@pytest.mark.parametrize("language", catalogues.LANGUAGES)
def test_every_message_is_translated_and_none_is_fuzzy(language: str) -> None:
    assert catalogues.problems(language) == (0, 0)


@pytest.mark.parametrize("language", catalogues.LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    with (catalogues.CATALOGUES / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalogue = read_po(handle)
    for message in catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set(PLACEHOLDER.findall(ids[-1])) - {"num"}
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) - {"num"} == wanted, (message.id, text)


def test_russian_has_three_plural_forms_and_chinese_one() -> None:
    with (catalogues.CATALOGUES / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        assert read_po(handle).num_plurals == 3
    with (catalogues.CATALOGUES / "zh_Hans" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        assert read_po(handle).num_plurals == 1


def test_compiling_reports_complete_catalogues(capsys: pytest.CaptureFixture[str]) -> None:
    assert catalogues.compile_all() == 0
    out = capsys.readouterr().out
    for language in catalogues.LANGUAGES:
        assert f"{language}: 0 untranslated, 0 fuzzy" in out
        assert (catalogues.CATALOGUES / language / "LC_MESSAGES" / "messages.mo").stat().st_size > 10_000
