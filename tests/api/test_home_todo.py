"""The start page as a to-do list, and the counts on the menu: each person sees what waits for them and
nothing that waits for someone else (their own request is never "waiting for their decision")."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.conftest import login
from vault.models import Alert, Severity, User
from vault.services import todo

TEXT = b"Visit notes, prices and contacts.\n"


@pytest.fixture
def scene(api: Any, rt: Any) -> dict[str, int]:
    """A grade-2 request by Bea waiting for a decision; a grade-3 loan of Bea's approved and waiting for
    Kim's release (one of Bob's would wait for the approvals his notice asks); a grade-2 loan Bob holds; an
    open alert about Bob; Bob on notice, handing a key customer to Bea."""
    ids = {"customer": api.customer("Ibérica Logística", owner="bob")}
    ids["plan"] = api.upload(ids["customer"], grade=2, title="Account plan", content=TEXT, filename="plan.txt")
    ids["prices"] = api.upload(ids["customer"], grade=2, title="Price list", content=TEXT, filename="prices.txt")
    ids["secret"] = api.upload(ids["customer"], grade=3, title="Board minutes", content=TEXT, filename="m.txt",
                               custodian="kim")
    ids["waiting"] = api.loan(ids["plan"], "bea")
    ids["release"] = api.approved_loan(ids["secret"], "bea")
    ids["held"] = api.approved_loan(ids["prices"], "bob")
    with rt.db.session() as session:
        alert = Alert(user_id=_uid(rt, "bob"), rule="directory_sweep", window_key="w1",
                      severity=Severity.MEDIUM, summary="Bob read many customers")
        session.add(alert)
        session.flush()
        ids["alert"] = alert.id
    started = api.post("/api/v1/departures", "adm", json={
        "person": "bob", "last_day": (date.today() + timedelta(days=14)).isoformat(), "successor": "bea"})
    assert started.status_code == 201, started.get_json()
    return ids


def _home(app: Any, username: str) -> str:
    client = app.test_client()
    login(client, username)
    page = client.get("/")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _section(html: str, name: str) -> str:
    match = re.search(rf'<section class="todo" id="todo-{name}">(.*?)</section>', html, re.S)
    return match.group(1) if match else ""


def _badge(html: str, endpoint_path: str) -> str | None:
    match = re.search(rf'<a href="{re.escape(endpoint_path)}">[^<]*</a><span class="badge nav-count">(\d+)<', html)
    return match.group(1) if match else None


def test_the_approver_sees_the_request_waiting_and_the_open_alert(app, scene):
    html = _home(app, "ann")
    assert "Account plan" in _section(html, "decisions")
    assert "Bob read many customers" in _section(html, "alerts")
    assert _badge(html, "/loans/approvals") == "1"
    # The departure raises its own alert too: the badge counts every open alert but none about Ann.
    assert int(_badge(html, "/alerts/") or 0) >= 1
    assert _section(html, "releases") == ""  # not a custodian


def test_the_custodian_sees_the_release_and_no_decision(app, scene):
    html = _home(app, "kim")
    assert "Board minutes" in _section(html, "releases")
    assert _badge(html, "/loans/custody") == "1"
    assert _section(html, "decisions") == "" and _section(html, "alerts") == ""


def test_the_borrower_sees_her_loans_and_handovers_never_her_own_request(app, scene):
    html = _home(app, "bob")
    loans = _section(html, "loans")
    assert "Price list" in loans and "Board minutes" not in loans  # waiting for release is not active
    assert re.search(r"Price list.*?Text</span></td>\s*<td>\d+</td>\s*<td>\w{3} \d{1,2}, \d{4}, [^<]+ UTC", loans, re.S)
    assert "Bob read many customers" not in html  # nobody sees an alert about themselves
    assert _section(html, "decisions") == ""
    successor = _home(app, "bea")
    assert "Ibérica Logística" in _section(successor, "handovers")
    assert _badge(successor, "/departures/handover") == "1"
    assert "Account plan" not in _section(successor, "decisions")  # her own request


def test_auditors_see_no_work_of_others_and_administrators_their_departures(app, scene):
    auditor = _home(app, "aud")
    assert "Bob read many customers" in _section(auditor, "alerts")
    assert not _section(auditor, "decisions") and not _section(auditor, "loans")
    assert not _section(auditor, "departures")
    admin = _home(app, "adm")
    assert all(not _section(admin, name) for name in ("decisions", "releases", "loans", "alerts", "overdue"))
    # The administrator's own work: the departure they are mailed about, not yet ready to complete
    # (Bob's key customer waits for Bea's confirmation).
    departures = _section(admin, "departures")
    assert re.search(r'<a href="/departures/\d+">Bob</a>', departures), departures
    assert "handovers still open" in departures and "ready to complete" not in departures
    assert _badge(admin, "/departures/") == "1"


def test_overdue_records_are_those_of_the_book_and_team_past_their_cadence(api, rt, scene, clock):
    """Bea's new key customer has had no record edit since it was made: not overdue within its cadence,
    overdue once it has passed; nobody outside her book has it in their list. (The scene's customer is
    worked by everyone, so it is overdue for both.)"""
    mine = api.customer("Nordlicht Handel", owner="bea", shared=False)
    bea_id, kim_id = _uid(rt, "bea"), _uid(rt, "kim")
    with rt.db.session() as session:
        assert todo.overdue_customers(rt, session, session.get(User, bea_id)) == []
    clock.advance(timedelta(days=rt.settings.records.cadence("key") + 2))
    with rt.db.session() as session:
        bea, kim = session.get(User, bea_id), session.get(User, kim_id)
        late = todo.overdue_customers(rt, session, bea)
        assert sorted((item.id, item.overdue_days) for item in late) == sorted([(mine, 2), (scene["customer"], 2)])
        assert todo.counts_for(rt, session, bea)["overdue"] == 2
        assert [item.id for item in todo.overdue_customers(rt, session, kim)] == [scene["customer"]]


def _uid(rt: Any, username: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(User.id).where(User.username == username))


def test_the_to_do_takes_a_handful_of_statements(app, rt, scene):
    """However many loans wait, the list costs a fixed number of statements (no query per row)."""
    with rt.db.session() as session:
        ann = session.get(User, _uid(rt, "ann"))
        statements: list[str] = []
        engine = session.get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            waiting = todo.todo_for(rt, session, ann)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    assert len(waiting.decisions) == 1 and waiting.alerts_total >= 1
    assert len(statements) <= 12, statements


def test_a_failing_count_leaves_the_page_without_badges_not_broken(app, scene, monkeypatch):
    client = app.test_client()
    login(client, "ann")

    def broken(*_args: Any) -> dict[str, int]:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(todo, "counts_for", broken)
    page = client.get("/loans/approvals")
    assert page.status_code == 200
    assert "nav-count" not in page.get_data(as_text=True)
