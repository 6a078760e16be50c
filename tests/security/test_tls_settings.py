"""A site declared as https (behind a proxy that terminates TLS) marks cookies Secure and sends HSTS."""

from __future__ import annotations

import pytest

from tests.security.helpers import password_step
from vault.models import Role


@pytest.fixture
def settings_overrides():
    return {"base_url": "https://vault.example.com"}


def test_secure_cookie_and_hsts_from_the_base_url(client, users):
    users.make("ann", Role.BORROWER)
    response = password_step(client, "ann")
    assert response.status_code == 302
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("vault_session=")]
    assert len(cookies) == 1 and "Secure" in cookies[0] and "HttpOnly" in cookies[0]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert client.get("/login").headers["Strict-Transport-Security"].startswith("max-age=")
