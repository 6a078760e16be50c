"""Security headers on every kind of response: pages, redirects, refusals, errors, JSON, static files."""

from __future__ import annotations

import re

import pytest

from tests.conftest import login
from tests.security.helpers import password_step
from vault.core.actions import Action
from vault.models import Role
from vault.web.guard import permission

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _check(response, label):
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives.get("default-src") == ["'self'"], label
    assert directives.get("script-src") == ["'self'"], label
    assert directives.get("style-src") == ["'self'"], label
    assert directives.get("frame-ancestors") == ["'none'"], label
    assert directives.get("object-src") == ["'none'"], label
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, label
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (label, name, response.headers.get(name))
    assert "Strict-Transport-Security" not in response.headers, label  # plain http here


@pytest.fixture
def failing_app(app):
    @app.route("/boom")
    @permission(Action.PUBLIC)
    def boom():
        raise RuntimeError("a bug")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def test_every_kind_of_response_carries_the_headers(failing_app, users):
    users.make("bob", Role.BORROWER)
    client = failing_app.test_client()
    anonymous = {
        "page": client.get("/login"),
        "redirect to sign-in": client.get("/"),
        "not found": client.get("/no/such/page"),
        "method not allowed": client.get("/logout"),
        "csrf failure": client.post("/login", data={"username": "x", "password": "y"}),
        "api unauthenticated": client.get("/api/v1/me"),
        "api not found": client.get("/api/v1/nothing"),
        "health check": client.get("/healthz"),
        "static file": client.get("/static/css/vault.css"),
        "server error": client.get("/boom"),
        "failed sign-in": password_step(client, "bob", "wrong password"),
    }
    expected_status = {"page": 200, "redirect to sign-in": 302, "not found": 404, "method not allowed": 405,
                       "csrf failure": 400, "api unauthenticated": 401, "api not found": 404, "health check": 200,
                       "static file": 200, "server error": 500, "failed sign-in": 200}
    for label, response in anonymous.items():
        assert response.status_code == expected_status[label], (label, response.status_code)
        _check(response, label)
    login(client, "bob")
    for label, response in {"signed-in page": client.get("/"), "refusal": client.get("/admin/users"),
                            "account page": client.get("/account")}.items():
        _check(response, label)
    assert client.get("/admin/users").status_code == 403


def test_pages_are_not_cached_but_static_files_may_be(client):
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/me").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/css/vault.css").headers.get("Cache-Control", "")


def test_hsts_when_the_request_came_over_tls(client):
    response = client.get("/login", base_url="https://vault.example")
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_no_inline_script_or_style_in_the_security_pages(client, users):
    """The CSP would block them; none may be needed (QR code included)."""
    users.make("val", Role.APPROVER, second_factor=False)
    pages = [client.get("/login")]
    password_step(client, "val")
    pages.append(client.get("/account/second-factor"))
    for response in pages:
        text = response.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\ssrc=)", text)  # a script file is allowed, inline is not
        assert "<style" not in text
        assert " style=" not in text
        assert " onclick=" not in text and " onload=" not in text
