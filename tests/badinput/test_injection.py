"""Injection-shaped values in every search and filter parameter, on the pages and the API.

SQL fragments, LIKE wildcards, backslashes, digits that are not ASCII, numbers too big for any
column, NUL and other control characters, right-to-left marks, invalid UTF-8 and very long values:
none may cause a server error, and where a list comes back it holds exactly the rows the value
matches taken literally (an oracle computes them from the database in Python), never more.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.badinput.scene import Scene, escaped
from tests.conftest import csrf_from, login
from vault.models import Alert, AuditEvent, Customer, User
from vault.models.customers import name_key

SQLISH = "' OR 1=1 --"
MAX_ID = 2**31 - 1
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
VALUES: tuple[str, ...] = (
    SQLISH, "' OR '1'='1", "1; DROP TABLE users; --", '" OR ""="', "1 UNION SELECT password_hash FROM users",
    "%", "_", "%%", "\\", "\\%", "*", "loan:*", "loan:*' --", "%' --",
    "Ünïcødé 名前 😀", "²", "١٢٣", "٣", "0x10", "-1", "0", "1e9", " 7 ", "+5",
    "99999999999999999999999", "9223372036854775808", "2147483648",
    "\x00", "a\x00b", "\x1b[31m", "\u202eevil", "\ufeff", "<script>alert(1)</script>",
    "x" * 10_000,
)
# One of each kind, for the pages that cost most to render (the audit desk and its timelines).
CORE_VALUES: tuple[str, ...] = (
    SQLISH, "%", "_", "\\", "*", "Ünïcødé 名前 😀", "²", "١٢٣", "-1", "2147483648", "9223372036854775808",
    "99999999999999999999999", "\x00", "a\x00b", "\x1b[31m", "\u202eevil", "x" * 10_000,
    "0001-01-01", "9999-12-31",  # the calendar's ends, in the date filters
)
# Raw query-string bytes that are not valid UTF-8 once percent-decoded.
RAW_VALUES = ("%ED%A0%80", "%FF%FE", "%C0%AF", "%", "%zz")


def _queries(name: str, values: tuple[str, ...]) -> list[str]:
    """Query strings giving `name` each value, and each raw byte sequence."""
    return [f"{name}={quote(value, safe='')}" for value in values] + [f"{name}={raw}" for raw in RAW_VALUES]


AUDIT_FILTERS = ("since", "until", "user", "actor", "customer", "document", "loan", "action", "outcome", "place")


def targets(scene: Scene) -> list[tuple[str, str | None, tuple[str, ...], tuple[str, ...]]]:
    """(path, who reads it, its parameters, the values tried) for every search and filter."""
    return [
        ("/customers/", "carl", ("q", "page"), VALUES),
        ("/search/", "carl", ("q", "mine"), VALUES),
        ("/audit/", "aud", (*AUDIT_FILTERS, "before", "after"), CORE_VALUES),
        (f"/audit/trail/customer/{scene.customer}", "aud", (*AUDIT_FILTERS, "before", "after"), CORE_VALUES),
        ("/alerts/", "aud", ("status", "severity", "rule", "user", "page"), VALUES),
        (f"/departures/{scene.departure}/report", "aud", ("days",), VALUES),
        ("/documents/new", "carl", ("customer",), VALUES),
        ("/login", None, ("next",), VALUES),
        ("/api/v1/customers", "carl", ("q", "page"), VALUES),
        ("/api/v1/search", "carl", ("q", "mine"), VALUES),
        ("/api/v1/loans", "ann", ("mine", "status"), VALUES),
        ("/api/v1/audit", "aud", (*AUDIT_FILTERS, "format"), CORE_VALUES),
        ("/api/v1/audit/verify", "aud", ("from",), VALUES),
        ("/api/v1/audit/events", "aud", (*AUDIT_FILTERS, "before", "after", "limit"), CORE_VALUES),
    ]


class Crashed:
    """What a request that raised looks like here: a server error, with the exception as its body."""

    def __init__(self, exc: Exception) -> None:
        self.status_code = 500
        self.text = f"{type(exc).__name__}: {exc}"

    def get_data(self) -> bytes:
        return self.text.encode()

    def get_json(self, silent: bool = False) -> None:
        return None


def fetch(client: Any, url: str, **options: Any) -> Any:
    """GET `url`; an exception the application let escape counts as the 500 a server would send."""
    try:
        return client.get(url, **options)
    except Exception as exc:
        return Crashed(exc)


@pytest.mark.slow
def test_no_filter_value_causes_a_server_error(app: Any, scene: Scene) -> None:
    failures: list[str] = []
    browsers: dict[str | None, Any] = {}
    for path, who, names, values in targets(scene):
        api = path.startswith("/api/")
        headers = {"Authorization": f"Bearer {scene.token(who)}"} if api and who else {}
        if not api and who not in browsers:
            browsers[who] = app.test_client()
            if who:
                login(browsers[who], who)
        for name in names:
            for query in _queries(name, values):
                client = app.test_client() if api else browsers[who]
                response = fetch(client, f"{path}?{query}", headers=headers)
                label = f"{path}?{query[:60]}"
                if response.status_code >= 500:
                    failures.append(f"{label}: {response.status_code} {response.get_data()[:200]!r}")
                elif api and response.status_code >= 400:
                    body = response.get_json(silent=True)
                    if not (isinstance(body, dict) and body.get("code") and body.get("error")):
                        failures.append(f"{label}: a {response.status_code} without the JSON error shape")
    assert not failures, "\n".join(failures)


# -- no extra rows ----------------------------------------------------------------------------------------


def _customer_names(rt: Any) -> list[str]:
    with rt.db.session() as session:
        return list(session.scalars(select(Customer.name)))


def _normal(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _could_match(query: str, name: str) -> bool:
    """The names a search may return: the query, taken literally, in the name, ignoring case and accents
    (both folded as the product folds names: `name_key`), never as a wildcard pattern."""
    return name_key(_normal(query)[:200]) in name_key(name)


def test_customer_search_returns_only_literal_matches(app: Any, scene: Scene) -> None:
    names = _customer_names(scene.rt)
    browser = app.test_client()
    login(browser, "carl")
    headers = {"Authorization": f"Bearer {scene.token('carl')}"}
    failures: list[str] = []
    for value in (*VALUES, "100%", "snake_", "e_c", "%Pure%", "O'Brien", "Back\\slash", "ZÜRICH", "zürich",
                  "  plain   COMPANY ", "Quokka"):
        expected = {name for name in names if _could_match(value, name)}
        api = app.test_client().get("/api/v1/customers", query_string={"q": value}, headers=headers)
        if api.status_code == 200:
            got = {c["name"] for c in api.get_json()["customers"]}
            if not got <= expected or api.get_json()["total"] != len(got):
                failures.append(f"API q={value[:40]!r}: {sorted(got - expected)} beyond the literal matches")
            if value.isascii() and got != expected:
                failures.append(f"API q={value[:40]!r}: {sorted(got)} instead of {sorted(expected)}")
        elif not (api.status_code == 422 and "q" in api.get_json()["fields"]):
            failures.append(f"API q={value[:40]!r}: {api.status_code}")
        page = browser.get("/customers/", query_string={"q": value})
        if page.status_code != 200:
            failures.append(f"page q={value[:40]!r}: {page.status_code}")
            continue
        html = page.get_data(as_text=True)
        shown = {name for name in names if f">{escaped(name)}<" in html}
        if not shown <= expected:
            failures.append(f"page q={value[:40]!r}: {sorted(shown - expected)} beyond the literal matches")
        if value.isascii() and len(value) <= 200 and shown != expected:
            failures.append(f"page q={value[:40]!r}: {sorted(shown)} instead of {sorted(expected)}")
    assert not failures, "\n".join(failures)


def test_customer_search_property(app: Any, scene: Scene) -> None:
    """Random text, wildcard-heavy: the API returns only what contains the text literally."""
    names = _customer_names(scene.rt)
    headers = {"Authorization": f"Bearer {scene.token('carl')}"}
    client = app.test_client()
    alphabet = st.sampled_from("%_\\'\" aAcCeEnNoOpPrRsStTuUzZüÜß*-;=1()") | st.characters(codec="utf-8")

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(query=st.text(alphabet, min_size=1, max_size=12))
    def search(query: str) -> None:
        response = client.get("/api/v1/customers", query_string={"q": query}, headers=headers)
        assert response.status_code in (200, 422), response.get_data()[:200]
        if response.status_code == 422:
            assert CONTROL.search(query), query  # the only text the API refuses as a search
            return
        got = {c["name"] for c in response.get_json()["customers"]}
        expected = {name for name in names if _could_match(query, name)}
        assert got <= expected, (query, got - expected)
        if query.isascii():
            assert got == expected, (query, got, expected)

    search()


def _events(rt: Any) -> list[AuditEvent]:
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _oracle(events: list[AuditEvent], users: dict[str, int], key: str, value: str) -> set[int] | None:
    """The seqs a single filter matches, taken literally; None when the value is not one the filter takes."""
    v = value.strip()
    if not v:
        return {e.seq for e in events}
    if CONTROL.search(v):
        return None  # no recorded name, place or action holds control characters
    digits = v.isascii() and v.isdigit()
    number = int(v) if digits and int(v) <= MAX_ID else None
    if digits and number is None and key in ("customer", "document", "loan", "actor", "user"):
        return None  # beyond every id
    if key in ("customer", "document", "loan"):
        if number is None:
            return None
        return {e.seq for e in events if getattr(e, f"{key}_id") == number}
    if key == "actor":
        if len(v) > 200:
            return None
        return {e.seq for e in events if (e.actor_id == number if number is not None else e.actor_name == v)}
    if key == "user":
        user_id = number if number is not None else users.get(v)
        if user_id is None:
            return None
        return {e.seq for e in events if user_id in (e.actor_id, e.subject_user_id)}
    if key == "place":
        return None if len(v) > 200 else {e.seq for e in events if v in (e.named_place, e.declared_place)}
    if key == "outcome":
        return {e.seq for e in events if e.outcome == v} if v in ("allowed", "denied", "failed") else None
    if key == "action":
        if len(v) > 64 or not all(ch.isalnum() or ch in ":_-.*" for ch in v) or "*" in v[:-1]:
            return None
        if v.endswith("*"):
            return {e.seq for e in events if e.action.startswith(v[:-1])}
        return {e.seq for e in events if e.action == v}
    raise AssertionError(key)


def test_audit_filters_return_only_literal_matches(app: Any, scene: Scene) -> None:
    # A refused sign-in recorded under an injection-shaped name: the one row `actor` must find.
    probe = app.test_client()
    token = csrf_from(probe.get("/login").get_data(as_text=True))
    assert probe.post("/login", data={"username": SQLISH, "password": "x", "csrf_token": token}).status_code == 200
    headers = {"Authorization": f"Bearer {scene.token('aud')}"}
    browser = app.test_client()
    login(browser, "aud")
    with scene.rt.db.session() as session:
        users = {name: user_id for name, user_id in session.execute(select(User.username, User.id))}
    failures: list[str] = []
    for key in ("actor", "place", "user", "action", "outcome", "customer", "document", "loan"):
        for value in (*VALUES, str(scene.customer), "bob", "loan:request", "Head office"):
            events = _events(scene.rt)
            expected = _oracle(events, users, key, value)
            page = browser.get("/audit/", query_string={key: value})
            label = f"{key}={value[:40]!r}"
            if expected is None or len(value) > 200:
                if page.status_code != 400 and not (len(value) > 200 and page.status_code == 200):
                    failures.append(f"page {label}: {page.status_code}, expected a refusal")
            elif page.status_code != 200:
                failures.append(f"page {label}: {page.status_code}")
            else:
                shown = {int(seq) for seq in re.findall(r'<td class="num">(\d+)</td>', page.get_data(as_text=True))}
                newest = set(sorted(expected, reverse=True)[:50])
                if shown != newest:
                    failures.append(f"page {label}: {sorted(shown - newest)} extra, {sorted(newest - shown)} missing")
            export = app.test_client().get("/api/v1/audit", query_string={key: value}, headers=headers)
            if expected is None:
                if export.status_code != 422:
                    failures.append(f"API {label}: {export.status_code}, expected 422")
                continue
            if export.status_code != 200:
                failures.append(f"API {label}: {export.status_code}")
                continue
            head = max(e.seq for e in events)
            got = {json.loads(line)["seq"] for line in export.get_data(as_text=True).splitlines() if line}
            got = {seq for seq in got if seq <= head}  # the export's own record comes after
            if got - expected:
                failures.append(f"API {label}: {sorted(got - expected)} beyond the literal matches")
            if expected - got:
                failures.append(f"API {label}: {sorted(expected - got)} missing")
    assert not failures, "\n".join(failures)
    [found] = [e for e in _events(scene.rt) if e.actor_name == SQLISH]
    assert found.action == "auth:login" and found.outcome == "denied"


def test_alert_and_loan_filters_return_only_literal_matches(app: Any, scene: Scene) -> None:
    browser = app.test_client()
    login(browser, "aud")
    with scene.rt.db.session() as session:
        alerts = {a.id: a.rule for a in session.scalars(select(Alert).where(Alert.user_id != scene.ids["aud"]))}
    for value in (*VALUES, "new_place", "notice"):
        page = browser.get("/alerts/", query_string={"rule": value, "status": "all"})
        if value in ("new_place", "notice"):
            assert page.status_code == 200
            shown = {int(i) for i in re.findall(r'href="/alerts/(\d+)"', page.get_data(as_text=True))}
            assert shown == {i for i, rule in alerts.items() if rule == value}, value
            assert shown, value
        else:  # not a rule's name: refused as a filter, not searched for
            assert page.status_code == 400, (value, page.status_code)
    headers = {"Authorization": f"Bearer {scene.token('ann')}"}
    for value in (*VALUES, "requested", "active", "REQUESTED", "requested "):
        response = app.test_client().get("/api/v1/loans", query_string={"status": value}, headers=headers)
        if value in ("requested", "active"):
            assert response.status_code == 200
            assert {loan["status"] for loan in response.get_json()["loans"]} <= {value}
            assert response.get_json()["loans"], value
        else:
            assert response.status_code == 422, (value, response.status_code)
            assert "status" in response.get_json()["fields"]
