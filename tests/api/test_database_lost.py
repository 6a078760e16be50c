"""The database connection lost at a chosen step of a request: the answer is always the clean 503.

Under a PostgreSQL restart one request in a few hundred answered gunicorn's bare 500: its flush failed,
SQLAlchemy rolled the session back and expired the signed-in person's row, and the 503 handler, asking
the person's language for its message, tried to reload that row on the failed session and raised again,
out of Flask. Here the request's own backend is terminated (`pg_terminate_backend`, a real lost
connection) just before a chosen statement, so each step is hit every time, not once in a while.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError, PendingRollbackError

from tests.api.conftest import PDF
from tests.conftest import login
from vault.models import AuditEvent, DocumentView, Role
from vault.web import pipeline

BODY = {"reason": "Preparing the visit", "place": "Office"}
pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"policy": {"grades": {"1": {"download_original": True}}}}


@pytest.fixture
def production(app: Any) -> Any:
    """Errors handled as in production: an exception that escapes every handler becomes a 500, as
    gunicorn would answer it, instead of reaching the test."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def _terminate(rt: Any, dbapi_connection: Any) -> None:
    pid = dbapi_connection.info.backend_pid
    with rt.db.engine.connect() as other:
        # Waits (up to 5 s) until the backend is gone, so the next statement surely meets a dead socket.
        assert other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar() is True


@pytest.fixture
def lose_connection(rt: Any) -> Iterator[Callable[[str], list[str]]]:
    """`lose_connection(step)`: the next statement whose SQL contains `step` (or the next COMMIT, for
    "COMMIT") finds its connection terminated. Returns a list that records when it happened."""
    hooks: list[tuple[str, Any]] = []

    def arm(step: str) -> list[str]:
        fired: list[str] = []

        def before_statement(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
            if not fired and step in statement:
                fired.append(statement)
                _terminate(rt, conn.connection.dbapi_connection)

        def before_commit(conn: Any) -> None:
            if not fired and conn.in_transaction():
                fired.append("COMMIT")
                _terminate(rt, conn.connection.dbapi_connection)

        name, hook = ("commit", before_commit) if step == "COMMIT" else ("before_cursor_execute", before_statement)
        event.listen(rt.db.engine, name, hook)
        hooks.append((name, hook))
        return fired

    yield arm
    for name, hook in hooks:
        event.remove(rt.db.engine, name, hook)


def _counts(rt: Any) -> tuple[int, int]:
    with rt.db.session() as session:
        return (session.scalar(select(func.count()).select_from(DocumentView)) or 0,
                session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


@pytest.mark.parametrize("step", [
    "FROM api_tokens",  # the caller's token, the first statement of the request
    "INSERT INTO document_views",  # the flush in the middle of the act (the 500 seen under load)
    "INTO audit_events",  # the act's audit record
    "COMMIT",  # the request's one commit, after the handler answered 201
])
def test_a_view_opened_as_the_connection_dies_answers_503(api: Any, rt: Any, production: Any,
                                                          lose_connection: Any, step: str) -> None:
    customer = api.customer()
    document = api.upload(customer, grade=1, content=PDF)
    api.token("bob")
    views_before, records_before = _counts(rt)
    fired = lose_connection(step)
    response = api.post(f"/api/v1/documents/{document}/views", "bob", json=BODY)
    assert fired, f"no statement matched {step!r}"
    assert response.status_code == 503, response.get_data()[:500]
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["code"] == "database_unavailable"
    # Nothing happened: no view, no record; and the next request is served again.
    assert _counts(rt) == (views_before, records_before)
    again = api.post(f"/api/v1/documents/{document}/views", "bob", json=BODY)
    assert again.status_code == 201, again.get_json()


def test_a_page_whose_connection_dies_answers_the_503_page(app: Any, client: Any, rt: Any, users: Any,
                                                           production: Any, lose_connection: Any) -> None:
    """The same on a signed-in page: the error page is drawn without the person's (expired) row."""
    users.make("aud", Role.AUDITOR)
    login(client, "aud")
    fired = lose_connection("FROM alerts")  # the home page's counts, after the person's row is loaded
    response = client.get("/")
    assert fired
    assert response.status_code == 503, response.get_data()[:500]
    assert response.headers["Retry-After"] == "5"
    assert b"database cannot be reached" in response.get_data()



def test_the_503_falls_back_to_a_plain_page_when_its_own_cannot_be_drawn(app: Any, monkeypatch: Any) -> None:
    """If drawing the page itself needs the lost database, the answer is still the 503, in plain words."""
    def needs_the_database(*_args: Any, **_kwargs: Any) -> str:
        raise PendingRollbackError("the session's transaction was rolled back")

    monkeypatch.setattr(pipeline, "render_template", needs_the_database)
    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    with app.test_request_context("/customers"):
        page = pipeline.database_unavailable_response(lost)
    with app.test_request_context("/api/v1/customers"):
        answer = pipeline.database_unavailable_response(lost)
    for response in (page, answer):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert b"database cannot be reached" in response.get_data()
    assert answer.get_json()["code"] == "database_unavailable"
