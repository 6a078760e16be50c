"""Forged requests: page forms posted without their CSRF token (or with someone else's), tampered and
forged session cookies, and the API's refusal of cookies.

Every page route that accepts POST is found by walking the URL map; each is posted by a person who
would be allowed to do it, with plausible fields, but without a valid token. The answer is 400 for
the CSRF reason, and nothing changes.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
from flask.sessions import SecureCookieSessionInterface
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.badinput.scene import Scene, changed, snapshot
from tests.conftest import PASSWORD, csrf_from, login
from vault.models import Role

COOKIE = "vault_session"
REASON = "Because the customer asked for it"


def forms(scene: Scene) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """Endpoint → (who may post it, URL values, the fields the real form sends)."""
    s = scene
    today = date.today().isoformat()
    return {
        "account.logout_everywhere": ("bob", {}, {}),
        "account.language_choice": ("bob", {}, {"locale": "ru", "timezone": "Europe/Moscow"}),
        "account.notifications": ("bob", {}, {"email": "bob@example.com", "mode_loan_decided": "off"}),
        "account.password": ("bob", {}, {"current": "correct horse battery", "new": "a much longer secret 42",
                                         "confirm": "a much longer secret 42"}),
        "account.recovery_codes": ("ann", {}, {"password": PASSWORD}),
        "account.second_factor": ("bob", {}, {"code": "123456"}),
        "account.second_factor_remove": ("ann", {}, {"password": PASSWORD}),
        "account.token_create": ("bob", {}, {"name": "forged", "scope": "write"}),
        "account.token_revoke": ("bob", {"token_id": 1}, {}),
        "admin.password_link": ("adm", {"user_id": s.ids["bob"]}, {}),
        "admin.role_decide": ("adm", {"request_id": 1, "verdict": "approve"}, {}),
        "admin.manager_decide": ("adm", {"request_id": 1, "verdict": "approve"}, {}),
        "auth.set_password": ("eve", {"secret": "a" * 43}, {"new": "a much longer secret 42",
                                                             "confirm": "a much longer secret 42"}),
        "letters.confirm": ("eve", {"link": s.letter_link}, {"contacted": "1", "comment": "forged"}),
        "letters.revoke": ("sue", {"letter_id": s.letter}, {}),
        "admin.users": ("adm", {}, {"username": "mallory", "password": "a much longer secret 42",
                                    "roles": "borrower"}),
        "admin.disable": ("adm", {"user_id": s.ids["bob"]}, {}),
        "admin.enable": ("adm", {"user_id": s.ids["bob"]}, {}),
        "admin.role_add": ("adm", {"user_id": s.ids["bob"]}, {"role": "compiler"}),
        "admin.role_remove": ("adm", {"user_id": s.ids["bob"]}, {"role": "borrower"}),
        "admin.second_factor_reset": ("adm", {"user_id": s.ids["ann"]}, {}),
        "admin.manager": ("adm", {"user_id": s.ids["bob"]}, {"manager": str(s.ids["sue"])}),
        "alerts.lift": ("abe", {"alert_id": s.alert_ann_open}, {}),
        "customers.change_owner": ("abe", {"customer_id": s.customer}, {"owner-owner": str(s.ids["bob"])}),
        "customers.add_co_owner": ("abe", {"customer_id": s.customer}, {"co-person": str(s.ids["bob"])}),
        "customers.remove_co_owner": ("abe", {"customer_id": s.customer}, {"rm-person": str(s.ids["bob"])}),
        "records.reveal": ("sam", {"customer_id": s.customer}, {"rv-reason": "Renewal call", "rv-place": "Office"}),
        "records.edit": ("sam", {"customer_id": s.customer}, {"rec-city": "Forged"}),
        "records.add_log": ("sam", {"customer_id": s.customer}, {"log-happened_on": "2026-12-01",
                                                                "log-channel": "call", "log-contact": "X",
                                                                "log-topic": "Forged"}),
        "alerts.acknowledge": ("aud", {"alert_id": s.alert_ann_open}, {}),
        "alerts.resolve": ("aud", {"alert_id": s.alert_ann_open}, {"note": "Checked with the manager, fine"}),
        "audit.export": ("aud", {}, {"format": "csv"}),
        "audit.verify": ("aud", {}, {}),
        "audit.trace": ("aud", {}, {"file": (io.BytesIO(b"%PDF-1.7 leaked"), "leak.pdf")}),
        "auth.agreement": ("bob", {}, {"accept": "y"}),
        "auth.login": ("bob", {}, {"username": "bob", "password": PASSWORD}),
        "auth.logout": ("bob", {}, {}),
        "auth.second_factor": ("ann", {}, {"code": "123456"}),
        "customers.new": ("carl", {}, {"name": "Initech", "segment": "key", "owner": str(s.ids["carl"])}),
        "viewer.heartbeat": ("bob", {"view_id": s.reading_view}, {"pages_seen": "1"}),
        "departures.new": ("adm", {}, {"user": str(s.ids["eve"]), "last_day": today, "notice_date": today}),
        "departures.update": ("adm", {"departure_id": s.departure}, {"note": "moved", "last_day": today}),
        "departures.reassign": ("adm", {"departure_id": s.departure, "item_id": s.item},
                                {"to_user": str(s.ids["bob"])}),
        "departures.complete": ("adm", {"departure_id": s.departure}, {"confirm": "y"}),
        "departures.withdraw": ("adm", {"departure_id": s.departure}, {"reason": REASON}),
        "departures.override": ("ann", {"departure_id": s.departure}, {"reason": REASON}),
        "departures.confirm": ("sue", {"item_id": s.item}, {f"i{s.item}-contact_date": today,
                                                            f"i{s.item}-note": REASON}),
        "departures.revoke_leaver_loan": ("kim", {"loan_id": s.loan_requested}, {"reason": REASON}),
        "pool.claim": ("bob", {"customer_id": s.customer}, {}),
        "pool.assign": ("abe", {"customer_id": s.customer}, {"as-owner": str(s.ids["bob"])}),
        "pool.release": ("abe", {"customer_id": s.customer}, {"rel-reason": REASON}),
        "documents.new": ("carl", {}, {"customer": str(s.customer), "title": "Forged", "grade": "1",
                                       "custodian": "0", "file": (io.BytesIO(b"forged text\n"), "forged.txt")}),
        "documents.add_version": ("carl", {"document_id": s.doc2},
                                  {"file": (io.BytesIO(b"forged text\n"), "forged.txt")}),
        "loans.request_loan": ("eve", {"document_id": s.doc2}, {"reason": REASON, "category": "other",
                                                                 "place": "Office", "days": "3"}),
        "loans.request_extension": ("bob", {"document_id": s.doc2}, {"reason": REASON, "category": "other",
                                                                      "place": "Office", "extra_views": "2"}),
        "loans.open_view": ("bob", {"document_id": s.doc2}, {"reason": REASON, "place": "Office"}),
        "loans.quota_override": ("kim", {"document_id": s.doc2}, {"views": "50"}),
        "loans.approve": ("abe", {"loan_id": s.loan_requested}, {"comment": "fine"}),
        "loans.reject": ("abe", {"loan_id": s.loan_requested}, {"comment": "No, not needed"}),
        "loans.release": ("kim", {"loan_id": s.loan_release}, {"confirm": "y"}),
        "loans.withdraw": ("sam", {"loan_id": s.loan_requested}, {}),
        "loans.approve_batch": ("abe", {}, {"loan": str(s.loan_requested), "comment": "fine"}),
        "loans.return_loan": ("bob", {"loan_id": s.loan_active}, {}),
        "loans.revoke": ("kim", {"loan_id": s.loan_active}, {"reason": REASON, "confirm": "y"}),
        "rotation.propose": ("abe", {}, {}),
        "rotation.approve": ("abe", {"proposal_id": s.rotation_open},
                             {f"a{s.rotation_open}-to_user": str(s.ids["cam"]), f"a{s.rotation_open}-confirm": "y"}),
        "rotation.skip": ("abe", {"proposal_id": s.rotation_open},
                          {f"s{s.rotation_open}-reason": REASON, f"s{s.rotation_open}-confirm": "y"}),
        "rotation.confirm": ("cam", {"proposal_id": s.rotation_task}, {f"c{s.rotation_task}-note": REASON}),
    }


def _page_posts(app: Any) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()
            if "POST" in rule.methods and not rule.rule.startswith("/api/")}


def _signed_in(app: Any, who: str) -> tuple[Any, str]:
    client = app.test_client()
    return client, login(client, who)


def test_every_page_form_refuses_a_post_without_a_valid_csrf_token(app: Any, scene: Scene) -> None:
    table = forms(scene)
    missing = _page_posts(app) - set(table)
    assert not missing, f"page forms not tried without a CSRF token: {sorted(missing)}"
    adapter = app.url_map.bind("localhost")
    _other, foreign_token = _signed_in(app, "eve")  # a valid token, of another session
    browsers: dict[str, Any] = {}
    failures: list[str] = []
    for endpoint, (who, values, fields) in sorted(table.items()):
        if who not in browsers:
            browsers[who] = _signed_in(app, who)[0]
        client = browsers[who]
        path = adapter.build(endpoint, values, method="POST")
        for label, extra in (("no token", {}), ("another session's token", {"csrf_token": foreign_token}),
                             ("a mangled token", {"csrf_token": "x" + foreign_token[1:]})):
            before = snapshot(scene.rt)
            data = {key: (io.BytesIO(value[0].getvalue()), value[1]) if isinstance(value, tuple) else value
                    for key, value in fields.items()}
            response = client.post(path, data={**data, **extra})
            body = response.get_data(as_text=True)
            if response.status_code != 400 or "CSRF" not in body:
                failures.append(f"{endpoint} ({label}): {response.status_code} {body[:120]!r}")
            difference = changed(before, snapshot(scene.rt))
            if difference:
                failures.append(f"{endpoint} ({label}): changed {sorted(difference)}")
    assert not failures, "\n".join(failures)
    # Still signed in: a refused sign-out did not sign anybody out.
    assert browsers["bob"].get("/").status_code == 200


def test_a_positive_control_the_same_post_with_the_token_does_act(app: Any, scene: Scene) -> None:
    """The fields above are enough to act: with the session's own token the same posts do change state."""
    table = forms(scene)
    for endpoint in ("loans.approve", "customers.new", "loans.open_view", "documents.new"):
        who, values, fields = table[endpoint]
        client, token = _signed_in(app, who)
        before = snapshot(scene.rt)
        path = app.url_map.bind("localhost").build(endpoint, values, method="POST")
        response = client.post(path, data={**fields, "csrf_token": token})
        assert response.status_code in (200, 302, 303), (endpoint, response.status_code)
        assert changed(before, snapshot(scene.rt)), endpoint


def test_the_api_ignores_session_cookies(app: Any, scene: Scene) -> None:
    """A signed-in browser's cookie opens no API route: a forged cross-site POST there carries no token."""
    client, _token = _signed_in(app, "bob")
    before = snapshot(scene.rt)
    for method, path, body in (("GET", "/api/v1/me", None), ("GET", f"/api/v1/loans/{scene.loan_active}", None),
                               ("POST", f"/api/v1/documents/{scene.doc2}/views",
                                {"reason": REASON, "place": "Office"}),
                               ("POST", f"/api/v1/loans/{scene.loan_active}/return", None)):
        response = client.open(path, method=method, json=body)
        assert response.status_code == 401, (path, response.status_code)
        assert response.get_json()["code"] == "not_authenticated"
    assert not changed(before, snapshot(scene.rt))


# -- session cookies ------------------------------------------------------------------------------------


def _cookie(client: Any) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def _signed_out(app: Any, value: str) -> bool:
    """Whether a browser presenting `value` as its session cookie is treated as signed out."""
    client = app.test_client()
    client.set_cookie(COOKIE, value)
    home = client.get("/")
    loans = client.get("/loans")
    return (home.status_code == 302 and "/login" in home.headers["Location"]
            and loans.status_code == 302 and "/login" in loans.headers["Location"])


@pytest.fixture
def bob_cookie(app: Any, users: Any) -> str:
    users.make("bob", Role.BORROWER)
    client = app.test_client()
    login(client, "bob")
    value = _cookie(client)
    assert not _signed_out(app, value), "the untouched cookie must work, or the test proves nothing"
    return value


def test_tampered_session_cookies_are_treated_as_signed_out(app: Any, bob_cookie: str) -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    # The last character is left alone: base64 ignores its low bits, so some replacements of it decode
    # to the very same signature bytes and the cookie stays valid (not a forgery).
    @given(position=st.integers(0, len(bob_cookie) - 2), replacement=st.sampled_from(alphabet),
           cut=st.integers(0, len(bob_cookie)))
    def flipped(position: int, replacement: str, cut: int) -> None:
        if bob_cookie[position] != replacement:
            assert _signed_out(app, bob_cookie[:position] + replacement + bob_cookie[position + 1:])
        if cut < len(bob_cookie):
            assert _signed_out(app, bob_cookie[:cut])

    flipped()
    for value in ("", ".", "..", bob_cookie + "x", bob_cookie.replace(".", "", 1), "\x00" * 10,
                  bob_cookie.split(".")[0], "e30.AAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBB"):
        assert _signed_out(app, value), value


def _forge(app: Any, secret: str, data: dict[str, Any]) -> str:
    """A session cookie with `data`, signed the way Flask signs them, with `secret` as the key."""
    original = app.secret_key
    app.secret_key = secret
    try:
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    finally:
        app.secret_key = original
    assert serializer is not None
    return serializer.dumps(data)


def test_a_session_forged_with_another_secret_is_treated_as_signed_out(app: Any, users: Any, rt: Any) -> None:
    bob = users.make("bob", Role.BORROWER)
    client = app.test_client()
    login(client, "bob")
    with client.session_transaction() as state:
        genuine = dict(state)
    assert genuine["_user_id"] == str(bob.id)
    ann = users.make("ann", Role.APPROVER)
    claiming_ann = {**genuine, "_user_id": str(ann.id)}
    # The same contents, or a claim to be someone else, signed with another key (a guessed default,
    # a leaked development key, the real one with a stray space).
    for secret in ("dev", "another-secret-key", "test-secret-key "):
        assert _signed_out(app, _forge(app, secret, genuine)), secret
        assert _signed_out(app, _forge(app, secret, claiming_ann)), secret
    # The control: the same contents signed with the application's key are accepted, so what refuses
    # the forgeries above is the signature alone.
    assert not _signed_out(app, _forge(app, rt.settings.secret_key, genuine))


def test_sign_in_form_without_csrf_does_not_sign_in(app: Any, users: Any) -> None:
    users.make("bob", Role.BORROWER)
    client = app.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": "bob", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302
    page = client.get("/login")
    ok = client.post("/login", data={"username": "bob", "password": PASSWORD,
                                     "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert ok.status_code == 302
