#!/usr/bin/env python3
"""The message catalogues: extract the texts to translate, and compile the translations.

    python scripts/catalogues.py extract   messages.pot from the code and templates, then each language's
                                           messages.po updated to it (new texts empty, gone texts dropped)
    python scripts/catalogues.py compile   messages.mo for each language, with statistics; exits 1 when a
                                           language has an untranslated or fuzzy message

The compiled .mo files are not kept in git: set-up (scripts/bootstrap.sh) and the test command compile
them, and the wheel carries whatever was compiled before it was built.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = ROOT / "vault" / "translations"
TEMPLATE = CATALOGUES / "messages.pot"
LANGUAGES = ("zh_Hans", "ru")
EXTRACT_ARGS = ("-F", "babel.cfg", "-k", "_l", "-k", "N_", "-k", "lazy_ngettext:1,2", "-k", "add:3",
                "-c", "Translators:", "--no-location", "--sort-output", "--project", "vault",
                "--copyright-holder", "the company running vault")


def pybabel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], cwd=ROOT, check=True)


def extract(out: Path = TEMPLATE) -> None:
    """Write the catalogue template `out` from the sources (sorted, without line numbers, so it changes
    only when a text does)."""
    pybabel("extract", *EXTRACT_ARGS, "-o", str(out), ".")


def update() -> None:
    extract()
    for language in LANGUAGES:
        po = CATALOGUES / language / "LC_MESSAGES" / "messages.po"
        command = "update" if po.exists() else "init"
        extra = ("--no-fuzzy-matching", "--ignore-obsolete") if command == "update" else ()
        pybabel(command, "-i", str(TEMPLATE), "-d", str(CATALOGUES), "-l", language, *extra)


def problems(language: str) -> tuple[int, int]:
    """(untranslated, fuzzy) messages of one language's catalogue."""
    with (CATALOGUES / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalogue = read_po(handle)
    untranslated = fuzzy = 0
    for message in catalogue:
        if not message.id:
            continue
        if message.fuzzy:
            fuzzy += 1
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            untranslated += 1
    return untranslated, fuzzy


def compile_all() -> int:
    """Compile every language (fuzzy ones too, so the statistics name them); 1 if any is incomplete."""
    pybabel("compile", "-d", str(CATALOGUES), "--statistics", "--use-fuzzy")
    status = 0
    for language in LANGUAGES:
        untranslated, fuzzy = problems(language)
        print(f"{language}: {untranslated} untranslated, {fuzzy} fuzzy")
        if untranslated or fuzzy:
            status = 1
    return status


def main(argv: list[str]) -> int:
    if argv == ["extract"]:
        update()
        return 0
    if argv == ["compile"]:
        return compile_all()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
