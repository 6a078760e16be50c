"""Fixtures for the reliability tests: private servers that the tests may kill, and a helper to sign in
over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.seaweed import SeaweedServer
from tests.support.factories import PASSWORD

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture(scope="module")
def own_seaweed() -> Iterator[SeaweedServer]:
    """A SeaweedFS for this module alone: the tests kill it, and fsck lists its whole bucket."""
    server = SeaweedServer(bucket="vault").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL for this module alone: the tests restart it."""
    cluster = PostgresCluster(max_connections=100).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(base: str, username: str, password: str = PASSWORD) -> requests.Session:
    """Sign in through the real forms of the server at `base` (someone without a second factor who has
    accepted the agreement); the session's cookie is then good on any server of the deployment."""
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=30)
    answer = browser.post(f"{base}/login", data={"username": username, "password": password,
                                                 "csrf_token": csrf_of(page.text)},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text[:300]
    return browser
