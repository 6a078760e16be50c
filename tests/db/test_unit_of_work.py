"""The unit of work is the one commit point: services and pages never commit, the pipeline does."""

from __future__ import annotations

import re
from pathlib import Path

VAULT = Path(__file__).resolve().parents[2] / "vault"
COMMIT = re.compile(r"\.commit\(\)")


def test_only_the_unit_of_work_commits() -> None:
    committing = sorted(str(path.relative_to(VAULT.parent)) for path in VAULT.rglob("*.py")
                        if COMMIT.search(path.read_text(encoding="utf-8")))
    assert committing == ["vault/db/unit_of_work.py"]
