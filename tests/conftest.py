"""Shared test set-up: real services, an application per test on SQLite and on PostgreSQL, helpers.

Database-facing tests take the `rt` (runtime) or `app`/`client` fixtures, which are parametrized over
both databases: each test gets a database equal to a fresh copy of a template migrated once per session
(a file copy for SQLite; for PostgreSQL a `CREATE DATABASE ... TEMPLATE` copy, emptied after a test and
handed to the next, see `tests/fixtures/reused_databases.py`), so tests never see each other's rows and
the migrations themselves are exercised on both backends.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import vault.alerts
import vault.mail  # noqa: F401  (registers the notification listeners)
from crypto import Keyring
from tests.support.clock import clock  # noqa: F401  (the fixture, offered to every test)
from tests.support.factories import PASSWORD, Users, everyone_works  # noqa: F401 (shared)
from tests.support.routing import build_url_builders_once
from tests.support.templates import share_compiled_templates
from vault import create_app
from vault.config.settings import load_settings
from vault.db import schema
from vault.db.engine import Database
from vault.rendering import DEFAULT_LIMITS, PageRenderer
from vault.runtime import Runtime
from vault.services import accounts, renditions, totp

pytest_plugins = [
    "tests.fixtures.postgres", "tests.fixtures.reused_databases", "tests.fixtures.browser", "tests.fixtures.seaweed",
]

# Every test builds its own application; these keep it from generating the same code again each time.
build_url_builders_once()

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the message catalogues (.mo files are built, not kept in git), so pages, mail and the
    reports speak Chinese and Russian however the tests were started."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "catalogues.py"), "compile"], cwd=ROOT,
                   capture_output=True, check=False)


@pytest.fixture(autouse=True)
def pages_drawn_in_process() -> Iterator[None]:
    """Uploads draw their pages in this process rather than in a fork of it, as a deployment does
    (`vault.rendering.isolated`): a fork of a test worker, a large process, costs more than drawing the
    small files most tests upload. The fork is tested where it is the subject: `tests/rendering/test_isolated.py`,
    and `tests/viewer` and `tests/browser`, whose fixtures of this name leave the deployed renderer in place."""
    previous = renditions.set_renderer(PageRenderer(DEFAULT_LIMITS))
    yield
    renditions.set_renderer(previous)


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
def empty_database(db_backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Database]:
    """An empty database of its own on each backend, with no schema: for the migrations to run on."""
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


@contextlib.contextmanager
def fresh_database(backend: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """The URL of a migrated database of its own on `backend` ("sqlite" in `folder`, or "postgresql")."""
    if backend == "sqlite":
        target = folder / "vault.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    databases = request.getfixturevalue("postgres_databases")
    name = databases.take()
    try:
        yield databases.cluster.url(name)
    finally:
        databases.give_back(name)


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(db_backend, request, tmp_path) as url:
        yield url


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


def make_app(rt: Runtime) -> Any:
    """The application over `rt`, as tests use it (testing mode, templates compiled once per process)."""
    application = share_compiled_templates(create_app(runtime=rt))
    application.config["TESTING"] = True
    return application


@pytest.fixture
def app(rt: Runtime) -> Any:
    return make_app(rt)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def second_factor_code(rt: Runtime, username: str) -> str:
    """An unused authenticator code of `username`, as their phone would show it now.

    Tests sign one person in more often than once per 30-second step, which no person can; when the
    next unused step lies beyond the accepted drift, the replay guard's memory of the last step is
    moved back (the secret and the check itself are untouched).
    """
    with rt.db.session() as session:
        row = totp.record(session, accounts.get_user(session, username))
        assert row is not None, f"{username} has no authenticator"
        now = totp.time_step()
        step = now if row.last_step is None else max(now, row.last_step + 1)
        if row.confirmed_at is not None and step > now + totp.DRIFT_STEPS:
            row.last_step = now - 1
            step = now
        return totp.code_at(totp.secret_of(rt, row), step)


@pytest.fixture
def users(rt: Runtime) -> Users:
    return Users(rt)


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: Any, username: str, password: str = PASSWORD) -> str:
    """Sign in through the real forms; returns a CSRF token valid for the session's later forms.

    Goes through every step the sign-in owes, as the person would: the authenticator code (computed
    from their secret), enrolling one if a role that requires it was given after the account was made,
    and accepting the confidentiality agreement.
    """
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    rt = client.application.extensions["vault"]
    for _ in range(4):
        home = client.get("/")
        if home.status_code != 302:
            break
        step = urlsplit(home.headers["Location"]).path
        form = client.get(step)
        assert form.status_code == 200, (step, form.status_code)
        fields = {"csrf_token": csrf_from(form.get_data(as_text=True))}
        if step in ("/login/code", "/account/second-factor"):
            fields["code"] = second_factor_code(rt, username)
        elif step == "/agreement":
            fields["accept"] = "y"
        else:
            raise AssertionError(f"the sign-in of {username} was sent to {step}")
        done = client.post(step, data=fields)
        assert done.status_code in (200, 302), (step, done.get_data(as_text=True)[:500])
    assert home.status_code == 200, (home.status_code, home.headers.get("Location"))
    return csrf_from(home.get_data(as_text=True))

