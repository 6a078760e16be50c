"""The ``store`` fixture: every contract test runs once per backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import LocalStore, ObjectStore


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "objects")
    store.ensure_ready()
    return store


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    if request.param == "local":
        return request.getfixturevalue("local_store")
    return request.getfixturevalue("s3_store")
