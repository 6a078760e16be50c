"""Values at the edges of what the database and the calendar hold (finding 13 of the attack review).

Ids in paths beyond 32 bits (PostgreSQL's integer columns) or 64 bits (SQLite's), dates at the ends
of the calendar in the audit filters, and NUL or control characters in page forms: each gets a clean
4xx (404 for an id that cannot exist, a form error for a bad field) and never a server error; a form
field with a control character is never stored.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from tests.badinput.scene import Scene
from tests.badinput.test_injection import fetch
from tests.conftest import csrf_from, login
from vault.models import Customer

# Too big for a PostgreSQL integer column, too big for SQLite's 64-bit integers, and far too big.
HUGE_IDS = (2**31, 2**63, 10**30)
# Several people, so that each route is tried by someone its role gate lets through to the id.
READERS = ("adm", "aud", "carl", "bob", "ann", "kim")
CALENDAR_ENDS = ("0001-01-01", "9999-12-31", "0001-01-01T00:00:00", "9999-12-31T23:59:59", "0000-01-01",
                 "10000-01-01", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00")
_ARG = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


def _int_routes(app: Any) -> list[tuple[str, str]]:
    """(endpoint, path with every id argument replaced by {id}) for GET routes that take an int."""
    routes = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not rule.arguments:
            continue
        if any(type(conv).__name__ not in ("IntegerConverter", "BoundedId") for conv in rule._converters.values()):
            continue
        routes.append((rule.endpoint, _ARG.sub("{id}", rule.rule)))
    return routes


def test_ids_beyond_any_column_answer_404(app: Any, scene: Scene) -> None:
    routes = _int_routes(app)
    assert len(routes) > 10, routes
    failures = []
    for who in READERS:
        browser = app.test_client()
        login(browser, who)
        headers = {"Authorization": f"Bearer {scene.token(who)}"}
        for endpoint, path in routes:
            for ident in HUGE_IDS:
                api = path.startswith("/api/")
                response = fetch(app.test_client() if api else browser, path.format(id=ident),
                                 headers=headers if api else {})
                # 404 where the number fits no column; a wider column's route may refuse by role first.
                if response.status_code not in (403, 404) or (response.status_code == 403 and ident > 2**63):
                    failures.append(f"{who} {endpoint} {ident}: {response.status_code}")
    assert not failures, "\n".join(failures[:40])


def test_audit_dates_at_the_calendar_ends_are_no_server_error(app: Any, scene: Scene) -> None:
    browser = app.test_client()
    login(browser, "aud")
    headers = {"Authorization": f"Bearer {scene.token('aud')}"}
    failures = []
    for value in CALENDAR_ENDS:
        for name in ("since", "until", "before", "after"):
            for path, client, extra in (("/audit/", browser, {}), (f"/audit/trail/customer/{scene.customer}",
                                                                  browser, {}),
                                        ("/api/v1/audit", app.test_client(), headers)):
                response = fetch(client, f"{path}?{name}={value}", headers=extra)
                if response.status_code >= 500:
                    failures.append(f"{path}?{name}={value}: {response.status_code} {response.get_data()[:160]!r}")
    assert not failures, "\n".join(failures)


def test_control_characters_in_page_forms_are_refused_and_never_stored(app: Any, scene: Scene) -> None:
    browser = app.test_client()
    login(browser, "carl")
    for bad in ("Nul\x00Corp", "Bell\x07Corp", "Esc\x1b[31mCorp"):
        page = browser.get("/customers/new")
        assert page.status_code == 200
        response = browser.post("/customers/new", data={
            "csrf_token": csrf_from(page.get_data(as_text=True)), "name": bad, "segment": "ordinary",
            "notes": "fine notes"})
        assert response.status_code == 400, (bad, response.status_code)
        assert "control characters" in response.get_data(as_text=True)
    with scene.rt.db.session() as session:
        names = list(session.scalars(select(Customer.name)))
    assert not any(re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", name) for name in names), names


@pytest.mark.parametrize("host", ["a" * 64, "a..b", "x" * 70 + ".example.com"])
def test_a_host_no_url_can_be_built_for_is_a_plain_400(app: Any, host: str) -> None:
    """A Host werkzeug cannot bind (a label past 63 characters, an empty label) is a 400; the error page
    then built its links without a URL adapter and the answer was a bare 500, on every route."""
    client = app.test_client()
    for path in ("/healthz", "/login", "/api/v1/me"):
        answer = client.get(path, headers={"Host": host})
        assert answer.status_code == 400, (path, answer.status_code, answer.get_data()[:200])
