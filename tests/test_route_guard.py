"""Deny by default: every route names a policy action, and none but the public ones opens without sign-in."""

from __future__ import annotations

import re

import pytest

from vault.core.actions import Action
from vault.web.guard import coverage

# auth.set_password: a one-time link's secret is the credential (it sets a first password once).
# letters.confirm: a customer's contact, who has no account, answers the letter about their new account manager;
# the signed single-use link is the credential, and the page shows nothing of the customer's record.
PUBLIC_ENDPOINTS = {"auth.login", "auth.set_password", "home.healthz", "letters.confirm", "static"}


@pytest.fixture(params=["sqlite"])
def db_backend(request):
    return request.param


def test_every_route_is_in_the_policy_coverage_table(app):
    table = coverage(app)
    missing = sorted(endpoint for endpoint, action in table.items() if action is None)
    assert not missing, f"routes without a policy decision: {missing}"
    public = sorted(endpoint for endpoint, action in table.items() if action == Action.PUBLIC)
    assert set(public) <= PUBLIC_ENDPOINTS, f"unexpected public routes: {set(public) - PUBLIC_ENDPOINTS}"


def _concrete(rule):
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)


def test_no_route_but_the_public_ones_opens_without_authentication(app, client):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_concrete(rule), method=method)
            if rule.rule.startswith("/api/"):
                assert response.status_code == 401, (method, rule.rule, response.status_code)
            else:
                # Unsafe methods fail the CSRF check first (400); reads redirect to the sign-in page.
                assert response.status_code in (302, 400), (method, rule.rule, response.status_code)
                if response.status_code == 302:
                    assert "/login" in response.headers["Location"]


def test_an_unmarked_route_is_refused(app, client):
    @app.route("/unmarked")
    def unmarked():
        return "secret"

    assert coverage(app)["unmarked"] is None
    assert client.get("/unmarked").status_code == 403
