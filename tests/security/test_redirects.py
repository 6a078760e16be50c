"""`next` after sign-in goes to a page of this site only, however the target is disguised."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, csrf_from
from tests.security.helpers import location
from vault.models import Role
from vault.web.redirects import safe_next

OFF_SITE = [
    "https://evil.example/steal",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "relative/path",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%252F%252Fevil.example",
    "/%25252F%25252Fevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/%09/evil.example",
    "/%0d%0a/evil.example",
    "/\x00/evil",
    "/\u3000/evil.example",
    "/%E3%80%80/evil.example",
    "  //evil.example  ",
]

ON_SITE = ["/", "/account", "/documents/12?tab=versions", "/search?q=a%20b&page=2", "/customers/3#files"]


@pytest.mark.parametrize("target", OFF_SITE)
def test_off_site_targets_fall_back_to_the_default(target):
    assert safe_next(target, "/home") == "/home"


@pytest.mark.parametrize("target", ON_SITE)
def test_on_site_paths_are_kept(target):
    assert safe_next(target, "/home") == target


def test_empty_target_gives_the_default():
    assert safe_next(None, "/home") == "/home"
    assert safe_next("", "/home") == "/home"


@pytest.mark.parametrize("target", ["//evil.example", "/%2F%2Fevil.example", "javascript:alert(1)", "/\\evil"])
def test_sign_in_form_ignores_off_site_next(client, users, target):
    users.make("ann", Role.BORROWER)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": token,
                                           "next": target})
    assert location(response) == "/"


def test_sign_in_returns_to_the_page_first_asked_for_after_the_agreement(client, users):
    users.make("ann", Role.BORROWER)
    first = client.get("/account?tab=security")
    assert location(first) == "/login?next=/account?tab%3Dsecurity"
    token = csrf_from(client.get(location(first)).get_data(as_text=True))
    response = client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": token,
                                           "next": "/account?tab=security"})
    assert location(response) == "/account?tab=security"
    # The agreement is owed first; once accepted, the person lands where they wanted to go.
    assert location(client.get("/account?tab=security")) == "/agreement"
    token = csrf_from(client.get("/agreement").get_data(as_text=True))
    accepted = client.post("/agreement", data={"accept": "y", "csrf_token": token})
    assert location(accepted) == "/account?tab=security"
