"""The log is append-only in the database, and an act whose record cannot be written does not happen."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from tests.audit.conftest import append
from tests.conftest import PASSWORD, csrf_from
from tests.loans.helpers import PLACE, REASON, make_document
from vault.audit import AuditLog
from vault.core.context import AccessContext
from vault.models import AuditEvent, AuditHead, Document, DocumentView, QuotaUsage, Role, User
from vault.services import accounts
from vault.services.views import open_view


def test_update_of_an_audit_row_is_refused_by_the_database(rt):
    append(rt, 2)
    with pytest.raises(DBAPIError, match="append-only"), rt.db.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(actor_name="someone else"))
    with rt.db.session() as session:
        assert session.get(AuditEvent, 1).actor_name == "tester0"


def test_orm_change_of_an_audit_row_is_refused_too(rt):
    append(rt, 1)
    with pytest.raises(DBAPIError, match="append-only"), rt.db.session() as session:
        session.get(AuditEvent, 1).outcome = "denied"


def test_delete_of_an_audit_row_is_refused_by_the_database(rt):
    append(rt, 2)
    with pytest.raises(DBAPIError, match="append-only"), rt.db.session() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    with pytest.raises(DBAPIError, match="append-only"), rt.db.session() as session:
        session.delete(session.get(AuditEvent, 1))
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2


@pytest.mark.parametrize("db_backend", ["postgresql"])  # SQLite has no TRUNCATE
def test_truncate_is_refused_on_postgresql(rt):
    append(rt, 1)
    with pytest.raises(DBAPIError, match="append-only"), rt.db.session() as session:
        session.execute(text("TRUNCATE audit_events"))


def _refuse_audit_inserts(rt) -> None:
    """A real fault the database produces on demand: every INSERT into the log fails."""
    with rt.db.engine.begin() as connection:
        if rt.db.dialect == "postgresql":
            connection.exec_driver_sql(
                "CREATE FUNCTION audit_broken() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$")
            connection.exec_driver_sql("CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events "
                                       "FOR EACH ROW EXECUTE FUNCTION audit_broken()")
        else:
            connection.exec_driver_sql("CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events "
                                       "BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END")


def test_user_creation_does_not_happen_when_its_record_cannot_be_written(rt, monkeypatch):
    def broken(self, session, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(AuditLog, "record", broken)
    with pytest.raises(RuntimeError, match="audit log unavailable"), rt.db.session() as session:
        accounts.create_user(rt, session, username="ghost", password=PASSWORD, roles=(Role.BORROWER,),
                             ctx=AccessContext.cli())
    with rt.db.session() as session:
        assert session.scalar(select(User).where(User.username == "ghost")) is None


def test_sign_in_does_not_happen_when_its_record_cannot_be_written(rt, app, client, users):
    users.make("ann", Role.BORROWER)
    with rt.db.session() as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
    _refuse_audit_inserts(rt)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 500
    assert client.get("/").status_code == 302  # not signed in
    with rt.db.session() as session:
        assert session.scalar(select(User.last_login_at).where(User.username == "ann")) is None
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_opening_a_view_does_not_happen_when_its_record_cannot_be_written(rt, users):
    ann = users.make("ann", Role.BORROWER)
    carl = users.make("carl", Role.COMPILER)
    document_id = make_document(rt, compiler_id=carl.id, grade=1)
    _refuse_audit_inserts(rt)
    with pytest.raises(DBAPIError, match="audit log unavailable"), rt.db.session() as session:
        open_view(rt, session, session.get(User, ann.id), session.get(Document, document_id), reason=REASON,
                  place=PLACE, download=False, ctx=AccessContext(client_addr="10.0.0.9", user_agent="pytest"))
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(DocumentView)) == 0
        assert session.scalar(select(func.coalesce(func.sum(QuotaUsage.used), 0))) == 0
        head = session.get(AuditHead, 1)
        last = session.scalar(select(func.max(AuditEvent.seq)))
        assert head.seq == last  # the head did not move either


def test_the_same_view_opens_once_the_log_works(rt, users):
    """The control for the test above: the same call succeeds and leaves exactly one record."""
    ann = users.make("ann", Role.BORROWER)
    carl = users.make("carl", Role.COMPILER)
    document_id = make_document(rt, compiler_id=carl.id, grade=1)
    with rt.db.session() as session:
        opened = open_view(rt, session, session.get(User, ann.id), session.get(Document, document_id),
                           reason=REASON, place=PLACE, download=False,
                           ctx=AccessContext(client_addr="10.0.0.9", user_agent="pytest"))
        view_id = opened.view.id
    with rt.db.session() as session:
        records = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "document:view")))
    assert len(records) == 1
    assert (records[0].actor_id, records[0].document_id, records[0].outcome) == (ann.id, document_id, "allowed")
    assert records[0].detail and f'"view_id":{view_id}' in records[0].detail
