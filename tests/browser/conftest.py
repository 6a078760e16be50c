"""A live vault on 127.0.0.1 for the browser journeys: real HTTP, real PostgreSQL, real S3.

One HTTP server runs for the whole session (in a thread: starting one per test would cost more
than the journeys themselves); each test gets a vault of its own behind it — a fresh database copied
from the migrated template, its own key prefix in the SeaweedFS bucket, its own settings — so a
journey never sees another's people, files or audit records, and a journey that needs a trusted
place can have one without changing the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.conftest import FAST_HASH, Users, fresh_database
from tests.fixtures.seaweed import SeaweedServer
from vault import create_app
from vault.config.settings import load_settings
from vault.rendering import DEFAULT_LIMITS, PageRenderer
from vault.runtime import Runtime
from vault.services import renditions

# The backends the journeys run on: PostgreSQL, what production runs. Adding "sqlite" works and runs
# every journey again (about a minute more); the rest of the suite already covers both backends.
BACKENDS = ["postgresql"]


class _Switch:
    """The WSGI application the server runs: it hands each request to the current test's vault."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        app = self.app
        if app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no vault is being tested right now\n"]
        return app(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Request lines would drown a failing test's output; the screenshots tell the story."""


@dataclass
class LiveServer:
    """The HTTP server of the session: `base` is `http://127.0.0.1:<port>`."""

    base: str
    switch: _Switch


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    switch = _Switch()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, switch, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-vault", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", switch)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Vault:
    """One test's vault, as served at `base`: its runtime, app and a helper to create people."""

    base: str
    backend: str
    rt: Runtime
    app: Flask
    users: Users

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(params=BACKENDS)
def live_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def live_database(live_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test (equal to a copy of the session's template)."""
    with fresh_database(live_backend, request, tmp_path) as url:
        yield url


@pytest.fixture
def open_vault(
    live_server: LiveServer,
    live_backend: str,
    live_database: str,
    seaweed: SeaweedServer,
    keyring_path: Path,
    tmp_path: Path,
) -> Iterator[Callable[..., Vault]]:
    """`open_vault(**settings)` serves a vault with those settings (e.g. `trusted_places=...`) for this test.

    Storage is the session's SeaweedFS through the same settings an operator would write
    (VAULT_STORAGE=s3 and the endpoint and keys); the store is then narrowed to a key prefix of this
    test's own, because the bucket is shared and audit checkpoints are named by sequence number alone.
    """
    opened: list[Runtime] = []

    def start(**overrides: Any) -> Vault:
        if opened:
            raise RuntimeError("one vault per test")
        settings = load_settings(
            {
                "data_dir": tmp_path / "data",
                "database_url": live_database,
                "keyring": keyring_path,
                "secret_key": "browser-test-secret-key",
                "storage": "s3",
                "s3_endpoint": seaweed.endpoint,
                "s3_access_key": seaweed.access_key,
                "s3_secret_key": seaweed.secret_key,
                "s3_bucket": seaweed.bucket,
                "s3_secure": False,
                **FAST_HASH,
                **overrides,
            },
            environ={},
        )
        rt = Runtime.build(settings)
        opened.append(rt)
        store = seaweed.store()
        rt.store = store
        if rt.audit.checkpoints is not None:
            rt.audit.checkpoints.store = store
        rt.store.ensure_ready()
        app = create_app(runtime=rt)
        live_server.switch.app = app
        return Vault(base=live_server.base, backend=live_backend, rt=rt, app=app, users=Users(rt))

    try:
        yield start
    finally:
        live_server.switch.app = None
        for rt in opened:
            rt.close()


@pytest.fixture
def vault(open_vault: Callable[..., Vault]) -> Vault:
    """A vault with the default settings."""
    return open_vault()


@pytest.fixture(autouse=True)
def pages_drawn_in_process() -> Iterator[None]:
    """Not here: uploads draw their pages as deployed, in a fork (see the fixture of this name in
    tests/conftest.py)."""
    yield


@pytest.fixture
def demo_drawn_in_process() -> Iterator[None]:
    """For the walks over the demo company (`usefixtures`): its seventy-two files draw their pages in this
    process. In a fork each, as deployed, they took more than half the time of setting up the company; the
    walks read the pages the files leave behind, and the fork is checked where it is the subject (the
    journeys that upload, tests/rendering/test_isolated.py)."""
    previous = renditions.set_renderer(PageRenderer(DEFAULT_LIMITS))
    yield
    renditions.set_renderer(previous)
