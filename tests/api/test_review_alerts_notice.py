"""Auditors and approvers on notice and the alerts, on both databases: an alert names the person watched
and, in its evidence, the customers and files involved (an `outside_book` alert lists the customers a
colleague reached outside their book), and an auditor or approver on notice still read the desk, each alert
and its evidence, pages and API, and acknowledged them, as the audit log they may no longer read
(`reader_departing`). Now every alert route, reading and deciding (acknowledge, resolve, lift a suspension),
is refused to anyone on notice (403 `alerts_departing`, each refusal recorded), by one standing rule the
home page's alerts ask too; a colleague who is not leaving reads and decides on; a withdrawn notice gives
the alerts back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from tests.api.test_review_notice_deciders import _withdraw, give_notice
from tests.conftest import login
from vault.alerts.raising import Finding, raise_alert
from vault.models import Role, Severity
from vault.services import accounts, todo

CODE = "alerts_departing"


def _alert(api: Any, rt: Any) -> int:
    """A high `outside_book` alert about bob, whose evidence names a customer of bea's."""
    customer = api.customer("Nordlicht Handel", owner="bea", shared=False)
    with rt.db.session() as session:
        return raise_alert(rt, session, accounts.get_user(session, "bob"),
                           Finding("outside_book", Severity.HIGH, "2026-12-01T10", "3 customers outside the book",
                                   {"customers": [customer]}))


def _alert_count(rt: Any, username: str) -> int:
    with rt.db.session() as session:
        return todo.counts_for(rt, session, accounts.get_user(session, username))["alerts"]


@pytest.mark.parametrize("reader", ["aud", "ann"], ids=["auditor", "approver"])
def test_a_reader_on_notice_reads_and_settles_no_alert(api: Any, rt: Any, app: Any, users: Any, reader: str) -> None:
    users.make("ann2", Role.APPROVER)
    alert = _alert(api, rt)
    assert api.get("/api/v1/alerts", reader).get_json()["total"] == 1
    departure = give_notice(rt, reader)
    reads_before = len(events(rt, "alert:read"))

    answers = {
        "list": api.get("/api/v1/alerts", reader),
        "one": api.get(f"/api/v1/alerts/{alert}", reader),
        "acknowledge": api.post(f"/api/v1/alerts/{alert}/acknowledge", reader, json={}),
        "resolve": api.post(f"/api/v1/alerts/{alert}/resolve", reader, json={"note": "Talked it through with Bob"}),
        "lift": api.post(f"/api/v1/alerts/{alert}/lift-suspension", reader, json={}),
    }
    for name, answer in answers.items():
        assert_error(answer, 403, CODE)
        assert b"Nordlicht" not in answer.data and b"outside" not in answer.data, name
    client = app.test_client()
    csrf = login(client, reader)
    pages = {
        "desk": client.get("/alerts/"),
        "one": client.get(f"/alerts/{alert}"),
        "acknowledge": client.post(f"/alerts/{alert}/acknowledge", data={"csrf_token": csrf}),
        "resolve": client.post(f"/alerts/{alert}/resolve", data={"csrf_token": csrf,
                                                                 "note": "Talked it through with Bob"}),
    }
    for name, answer in pages.items():
        assert answer.status_code == 403, (name, answer.status_code)
        assert b"Nordlicht" not in answer.data, name
    home = client.get("/").get_data(as_text=True)
    assert 'href="/alerts/"' not in home and "3 customers outside the book" not in home
    assert _alert_count(rt, reader) == 0
    refused = sorted((e.action, e.actor_name, e.reason_code) for e in events(rt, "alert:read", "denied")
                     + events(rt, "alert:manage", "denied"))
    assert refused == sorted([("alert:read", reader, CODE)] * 4 + [("alert:manage", reader, CODE)] * 5)
    assert len(events(rt, "alert:read")) == reads_before
    assert events(rt, "alert:acknowledge") == [] and events(rt, "alert:resolve") == []

    # A colleague who is not leaving reads and decides on.
    assert api.get(f"/api/v1/alerts/{alert}", "ann2").status_code == 200
    assert _alert_count(rt, "ann2") >= 1  # this one, and the alerts the refusals themselves raised

    _withdraw(rt, departure)
    assert api.get("/api/v1/alerts", reader).get_json()["total"] == 1
    assert api.post(f"/api/v1/alerts/{alert}/acknowledge", reader, json={}).status_code == 200
