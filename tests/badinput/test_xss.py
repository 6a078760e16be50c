"""Stored and reflected markup: every page that shows a typed text shows it escaped.

The scene's texts (customer names, titles, file names, reasons, places, comments, revoke reasons,
notes, display names) all carry `<script>alert(1)</script>` or an attribute-breaking payload. Each page
is rendered for a person allowed to see it; the raw payload never appears, and the escaped form of
the texts the page is known to show does (so a page that stopped showing a text, or showed it raw,
fails the test).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.badinput.scene import ATTR, RAW_PAYLOADS, TEXTS, XSS, Scene, display_name, escaped
from tests.conftest import csrf_from, login

T = TEXTS


def pages(scene: Scene) -> list[tuple[str, str, tuple[str, ...]]]:
    """(who, page, texts the page must show escaped)."""
    s = scene
    return [
        ("carl", "/customers/", (T.customer,)),
        ("carl", "/customers/?q=Quokka", (T.customer,)),
        ("carl", "/search/?q=quokka", (T.customer, display_name("sue"))),
        ("carl", "/search/?q=narwhal", (T.title, T.customer)),
        ("ann", "/", (T.title, display_name("sam"))),
        ("aud", "/", (T.open_alert_summary,)),
        ("bob", "/", (T.title,)),
        ("carl", f"/customers/{s.customer}", (T.customer, T.title, display_name("sue"))),
        ("carl", f"/documents/{s.doc2}", (T.title, T.customer, T.filename)),
        ("bob", "/loans", (T.title, T.title3, T.title_revoked)),
        ("bob", f"/loans/{s.loan_active}", (T.reason, T.place, T.comment, display_name("ann"), T.title)),
        ("bob", f"/loans/{s.loan_revoked}", (T.revoke, display_name("kim"))),
        ("bob", f"/documents/{s.doc2}/reading", (T.title,)),
        ("ann", "/loans/approvals", (T.sam_reason, T.place, display_name("sam"), T.customer, T.title)),
        ("ann", f"/loans/{s.loan_requested}", (T.sam_reason, display_name("sam"))),
        ("kim", "/loans/custody", (T.title3, display_name("bob"), T.place)),
        ("kim", f"/loans/{s.loan_release}", (T.reason, T.comment)),
        ("ann", "/departures/loans", (display_name("sam"), T.title, T.customer)),  # a request: approvers see it
        ("aud", "/audit/?action=loan:request", (T.reason, T.sam_reason, T.customer, T.title)),
        ("aud", "/audit/?action=loan:approve", (T.comment,)),
        ("aud", "/audit/?action=loan:revoke", (T.revoke,)),
        ("aud", "/audit/?action=document:view", (T.view_reason, T.sam_view_reason, T.place)),
        ("aud", "/audit/?action=handover:confirm", (T.contact_note,)),
        ("aud", "/audit/?action=departure:start", (T.departure_note,)),
        ("aud", f"/audit/trail/customer/{s.customer}", (T.customer,)),
        ("aud", f"/departures/{s.departure}/report", (display_name("sam"), T.customer, T.sam_view_reason,
                                                      T.sam_reason)),
        ("aud", "/departures/", (display_name("sam"), display_name("sue"))),
        ("adm", f"/departures/{s.departure}", (display_name("sam"), T.departure_note, T.customer,
                                               T.contact_note, T.title)),
        ("sue", "/departures/handover", (T.customer, display_name("sam"), T.contact_note)),
        ("aud", "/alerts/?status=all", (T.alert_summary, display_name("ann"), display_name("sam"))),
        ("aud", f"/alerts/{s.alert_ann}", (T.alert_summary, T.resolution, display_name("ann"), f"code {XSS}")),
        ("ann", f"/alerts/{s.alert_notice}", (display_name("sam"),)),
        ("adm", "/admin/users", tuple(display_name(name) for name in ("bob", "ann", "sam"))),
        ("adm", f"/admin/users/{s.ids['bob']}", (display_name("bob"),)),
        ("bob", "/account", (display_name("bob"),)),
    ]


def problems(html: str, shown: tuple[str, ...], where: str) -> list[str]:
    found = [f"{where}: raw markup {payload!r} in the page" for payload in RAW_PAYLOADS if payload in html]
    return found + [f"{where}: {text!r} is not shown escaped" for text in shown if escaped(text) not in html]


def assert_escaped(html: str, shown: tuple[str, ...], where: str) -> None:
    found = problems(html, shown, where)
    assert not found, "\n".join(found)


def test_every_page_shows_typed_texts_escaped(app: Any, scene: Scene) -> None:
    clients: dict[str, Any] = {}
    found: list[str] = []
    for who, page, shown in pages(scene):
        if who not in clients:
            clients[who] = app.test_client()
            login(clients[who], who)
        response = clients[who].get(page)
        assert response.status_code == 200, (who, page, response.status_code)
        assert response.mimetype == "text/html"
        found += problems(response.get_data(as_text=True), shown, f"{who} {page}")
    assert not found, "\n".join(found)


def test_markup_typed_into_forms_comes_back_escaped(app: Any, scene: Scene) -> None:
    """Reflected: a refused or invalid form shows what was typed, escaped; so do echoed filters."""
    bob = app.test_client()
    token = login(bob, "bob")
    typed = f"Because {XSS} and more words"
    # Grade 1 needs no loan: the request is refused and the form comes back filled in.
    refused = bob.post(f"/documents/{scene.doc1}/loans/new",
                       data={"csrf_token": token, "reason": typed, "category": "other", "place": T.place, "days": "3"})
    assert refused.status_code == 403
    assert_escaped(refused.get_data(as_text=True), (typed, T.place), "refused loan request")
    invalid = bob.post(f"/documents/{scene.doc2}/view",
                       data={"csrf_token": token, "reason": typed, "place": "x" * 5000})
    assert invalid.status_code == 400
    assert_escaped(invalid.get_data(as_text=True), (), "invalid view form")

    carl = app.test_client()
    token = login(carl, "carl")
    name = f"Globex {XSS}{ATTR}"
    created = carl.post("/customers/new", data={"csrf_token": token, "name": name, "segment": "key",
                                                "owner": str(scene.ids["carl"])}, follow_redirects=True)
    assert created.status_code == 200
    assert_escaped(created.get_data(as_text=True), (name,), "flash after creating a customer")
    taken = carl.post("/customers/new", data={"csrf_token": token, "name": name, "segment": "key",
                                              "owner": str(scene.ids["carl"])})
    assert taken.status_code == 409
    assert_escaped(taken.get_data(as_text=True), (name,), "customer name already taken")

    aud = app.test_client()
    login(aud, "aud")
    for key in ("actor", "place", "user", "action", "customer", "since"):
        page = aud.get("/audit/", query_string={key: f"{XSS}\"'><img src=x onerror=alert(1)>"})
        assert page.status_code in (200, 400), (key, page.status_code)
        assert_escaped(page.get_data(as_text=True), (), f"audit filter {key}")
    alerts = aud.get("/alerts/", query_string={"rule": XSS, "status": "all"})
    assert_escaped(alerts.get_data(as_text=True), (), "alert filter")


@pytest.mark.parametrize("field", ["display_name", "username"])
def test_admin_form_echoes_markup_escaped(app: Any, scene: Scene, field: str) -> None:
    adm = app.test_client()
    login(adm, "adm")
    page = adm.get("/admin/users")
    values = {"csrf_token": csrf_from(page.get_data(as_text=True)), "username": "newperson",
              "display_name": "New Person", "password": "short", field: f"x{XSS}"}
    response = adm.post("/admin/users", data=values, follow_redirects=True)
    assert response.status_code == 200
    assert_escaped(response.get_data(as_text=True), (), f"admin form with markup in {field}")
