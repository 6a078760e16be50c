"""The layers of the code hold: the import-linter contract in pyproject.toml is kept, it catches a
wrong-way import, and no import hides inside a function to dodge a cycle."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
OURS = ("vault", "crypto", "storage")


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=where, capture_output=True, text=True,
                          env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_the_layer_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_a_wrong_way_import_breaks_the_contract(tmp_path: Path) -> None:
    for name in OURS:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "templates",
                                                                                   "static", "data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    services = tmp_path / "vault" / "services" / "customers.py"
    services.write_text(services.read_text() + "\nfrom vault.web import pipeline  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "vault.services is not allowed to import vault.web" in result.stdout


def _imports_in_functions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            names = ([inner.module or ""] if isinstance(inner, ast.ImportFrom) and inner.level == 0
                     else [a.name for a in inner.names] if isinstance(inner, ast.Import) else [])
            if isinstance(inner, ast.ImportFrom) and inner.level:
                names = ["(relative)"]
            found += [f"{path.relative_to(ROOT)}:{inner.lineno} {name}" for name in names
                      if name == "(relative)" or name.split(".")[0] in OURS]
    return found


def test_no_import_of_our_own_code_hides_in_a_function() -> None:
    found = [hit for name in OURS for path in sorted((ROOT / name).rglob("*.py"))
             if "migrations" not in path.parts for hit in _imports_in_functions(path)]
    assert not found, found
