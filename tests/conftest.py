"""Shared test set-up: real services, an application per test on SQLite and on PostgreSQL, helpers.

Database-facing tests take the `rt` (runtime) or `app`/`client` fixtures, which are parametrized over
both databases: each test gets a fresh database copied from a template migrated once per session
(a file copy for SQLite, `CREATE DATABASE ... TEMPLATE` for PostgreSQL), so tests never see each
other's rows and the migrations themselves are exercised on both backends.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crypto import Keyring
from vault import create_app, schema
from vault.config import load_settings
from vault.context import AccessContext
from vault.db import Database
from vault.models import Role, User
from vault.runtime import Runtime
from vault.services import accounts

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.browser"]

PASSWORD = "correct horse battery"
_counter = itertools.count(1)

# Cheap Argon2 parameters: the real ones cost ~0.2 s per hash, which would dominate the suite.
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}


@pytest.fixture(scope="session")
def keyring_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keyring") / "keyring.json"
    Keyring.create(path)
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    schema.upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_cluster: Any) -> str:
    name = "vault_template"
    postgres_cluster.create_database(name)
    db = Database(postgres_cluster.url(name))
    schema.upgrade(db)
    db.dispose()
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if db_backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "vault.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    cluster = request.getfixturevalue("postgres_cluster")
    template = request.getfixturevalue("postgres_template")
    name = f"t{os.getpid()}_{next(_counter)}"
    cluster.create_database(name, template=template)
    yield cluster.url(name)
    cluster.drop_database(name)


def make_runtime(data_dir: Path, database_url: str, keyring_path: Path, **overrides: Any) -> Runtime:
    settings = load_settings(
        {"data_dir": data_dir, "database_url": database_url, "keyring": keyring_path,
         "secret_key": "test-secret-key", **FAST_HASH, **overrides},
        environ={},
    )
    return Runtime.build(settings)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its `rt`/`app` (e.g. trusted places)."""
    return {}


@pytest.fixture
def rt(tmp_path: Path, database_url: str, keyring_path: Path, settings_overrides: dict[str, Any]) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path / "data", database_url, keyring_path, **settings_overrides)
    runtime.store.ensure_ready()
    yield runtime
    runtime.close()


@pytest.fixture
def app(rt: Runtime) -> Any:
    application = create_app(runtime=rt)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class Users:
    """Creates accounts on demand: `users.make("bob", Role.BORROWER)`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def make(self, username: str, *roles: Role, password: str = PASSWORD) -> User:
        with self.rt.db.session() as session:
            return accounts.create_user(self.rt, session, username=username, password=password,
                                        display_name=username.title(), roles=roles, ctx=AccessContext.cli())

    def token(self, username: str) -> str:
        with self.rt.db.session() as session:
            user = accounts.get_user(session, username)
            return accounts.create_token(self.rt, session, user).secret


@pytest.fixture
def users(rt: Runtime) -> Users:
    return Users(rt)


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: Any, username: str, password: str = PASSWORD) -> str:
    """Sign in through the real form; returns a CSRF token valid for the session's later forms."""
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    home = client.get("/")
    return csrf_from(home.get_data(as_text=True))
