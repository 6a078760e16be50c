"""The database tests' fixtures: an empty database on each backend, for the migrations to run on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from vault.db.engine import Database


@pytest.fixture
def empty_database(db_backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Database]:
    if db_backend == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield db
        db.dispose()
        return
    cluster = request.getfixturevalue("postgres_cluster")
    name = f"m{os.getpid()}_{id(request)}"
    cluster.create_database(name)
    db = Database(cluster.url(name))
    yield db
    db.dispose()
    cluster.drop_database(name)
