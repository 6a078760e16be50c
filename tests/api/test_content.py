"""A view in one request (`POST /api/v1/documents/{id}/content`): decided, spent, recorded and committed,
then delivered in the same response; every refusal, the refunds before the first byte, the quota under
fifty simultaneous requests, and an act whose record cannot be written not happening."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.api.conftest import PDF, accept_agreement, assert_error, events
from tests.audit.test_fail_closed import _refuse_audit_inserts
from tests.loans.helpers import FaultyStore, tamper, used, view_rows
from vault.core.context import AccessContext
from vault.models import Alert, AuditEvent, Document, QuotaExhaustion, QuotaUsage, ViewStatus, utcnow
from vault.services import accounts, maintenance, view_alerts, views

TRUSTED = {"REMOTE_ADDR": "10.1.2.3"}
OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}
BODY = {"reason": "Preparing the visit", "place": "Office"}


@pytest.fixture
def settings_overrides():
    # Grade 1 lets the original leave; grade 2 gives a stamped copy, and only to a trusted place.
    return {"trusted_places": "Head office=10.1.0.0/16",
            "policy": {"grades": {"1": {"download_original": True},
                                  "2": {"trusted_places_only": True}}}}


@pytest.fixture
def customer_id(api):
    return api.customer()


def set_quota(rt, document_id, views):
    with rt.db.session() as session:
        session.get(Document, document_id).view_quota = views


def fetch(api, document_id, user="bob", body=None, **options):
    return api.post(f"/api/v1/documents/{document_id}/content", user, json=BODY if body is None else body,
                    **options)


def test_one_request_delivers_the_original_and_records_the_view(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=1, filename="Prices 2024.pdf")
    response = fetch(api, document_id)
    assert response.status_code == 200
    assert response.get_data() == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Length"] == str(len(PDF))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="Prices 2024.pdf"')
    [opened] = events(rt, "document:download")
    assert (opened.actor_name, opened.document_id, opened.declared_place) == ("bob", document_id, "Office")
    assert '"remaining":9' in opened.detail
    [delivered] = events(rt, "content:delivered")
    assert f'"bytes":{len(PDF)}' in delivered.detail
    [view] = view_rows(rt)
    assert (view.status, view.download, view.bytes_sent) == (ViewStatus.DELIVERED, True, len(PDF))
    assert view.alerts_at is not None  # the early-warning rules ran, after the last byte
    assert api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"] == 9


def test_a_pdf_that_can_be_neither_drawn_nor_stamped_is_refused_and_costs_nothing(api, rt, customer_id):
    """Kept at upload without a preview (qpdf cannot read it), it was then a 500 telling the custodians to
    restore a file nothing had damaged, at every download. It is the file's state: 403 no_stamped_copy,
    the view given back, in one request and through the content URL alike."""
    document_id = api.upload(customer_id, grade=2, content=b"%PDF-1.7\n", filename="contract.pdf")
    api.approved_loan(document_id)
    remaining = api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"]
    assert_error(fetch(api, document_id, environ_base=TRUSTED), 403, "no_stamped_copy")
    opened = api.post(f"/api/v1/documents/{document_id}/views", "bob", json={**BODY, "download": True},
                      environ_base=TRUSTED)
    assert opened.status_code == 201, opened.get_json()
    assert_error(api.get(opened.get_json()["content_url"], "bob", environ_base=TRUSTED), 403, "no_stamped_copy")
    assert {view.status for view in view_rows(rt)} == {ViewStatus.REFUNDED}
    assert api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"] == remaining


def test_a_grade_without_originals_gets_the_stamped_copy_at_a_trusted_place(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=2)
    api.approved_loan(document_id)
    assert_error(fetch(api, document_id, environ_base=OUTSIDE), 403, "place_not_trusted")
    response = fetch(api, document_id, environ_base=TRUSTED)
    assert response.status_code == 200
    data = response.get_data()
    assert data.startswith(b"%PDF") and data != PDF  # stamped and marked, as the two-step download
    assert response.headers["Content-Type"] == "application/pdf"
    [view] = view_rows(rt)
    assert (view.status, view.named_place) == (ViewStatus.DELIVERED, "Head office")
    assert used(rt, view.user_id, document_id) == 1  # the refusal spent nothing


def test_refusals_spend_nothing_and_are_recorded(api, rt, users, customer_id):
    graded = api.upload(customer_id, grade=2)
    assert_error(fetch(api, graded, environ_base=TRUSTED), 403, "no_active_loan")
    top = api.upload(customer_id, grade=3)
    loan_id = api.approved_loan(top)
    api.post(f"/api/v1/loans/{loan_id}/release", "kim")
    assert_error(fetch(api, top, environ_base=TRUSTED), 403, "download_not_allowed")
    plain = api.upload(customer_id, grade=1)
    assert_error(fetch(api, plain, body={"reason": "x", "place": "Office"}), 403, "reason_too_short")
    assert_error(fetch(api, plain, body={"reason": "Preparing the visit", "place": " "}), 403, "place_required")
    assert_error(fetch(api, plain, body={"reason": "Preparing the visit"}), 422, "invalid_request")
    assert_error(fetch(api, 987654), 404, "not_found")
    assert_error(fetch(api, plain, user=None), 401, "not_authenticated")
    assert_error(fetch(api, plain, user="aud"), 403, "not_permitted")
    hidden = api.upload(api.customer("Not shared", shared=False), grade=1)
    assert_error(fetch(api, hidden), 404, "not_found")
    accept_agreement(rt, "bea")
    with rt.db.session() as session:
        read_only = accounts.create_token(rt, session, accounts.get_user(session, "bea"), scope="read").secret
    assert_error(api.post(f"/api/v1/documents/{plain}/content", token=read_only, json=BODY), 403, "token_scope")
    assert view_rows(rt) == []
    codes = sorted(e.reason_code for e in events(rt, "document:download", "denied"))
    assert codes == ["download_not_allowed", "no_active_loan", "not_found", "not_found", "place_required",
                     "reason_too_short"]


def test_the_quota_runs_out(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=1)
    set_quota(rt, document_id, 2)
    assert [fetch(api, document_id).get_data() for _ in range(2)] == [PDF, PDF]
    body = assert_error(fetch(api, document_id), 403, "quota_exhausted")
    assert "2 views" in body["error"]
    assert len(events(rt, "document:download")) == 2


@pytest.mark.parametrize("fault", ["storage_unavailable", "content_unreadable"])
def test_a_failure_before_the_first_byte_gives_the_view_back(api, rt, customer_id, fault):
    document_id = api.upload(customer_id, grade=1)
    real = rt.store
    if fault == "storage_unavailable":
        rt.store = FaultyStore(real, open_fails=True)
    else:
        tamper(rt, document_id, offset=100)
    try:
        response = fetch(api, document_id)
    finally:
        rt.store = real
    assert_error(response, 503 if fault == "storage_unavailable" else 500, fault)
    [refund] = events(rt, "view:refund")
    assert f'"cause":"{fault}"' in refund.detail
    assert events(rt, "content:delivered") == []
    [view] = view_rows(rt)
    assert view.status == ViewStatus.REFUNDED and used(rt, view.user_id, document_id) == 0


def test_the_view_does_not_happen_when_its_record_cannot_be_written(api, app, rt, customer_id):
    document_id = api.upload(customer_id, grade=1)
    api.token("bob")
    _refuse_audit_inserts(rt)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = fetch(api, document_id, check=False)
    assert response.status_code == 500
    assert PDF not in response.get_data()
    assert view_rows(rt) == []
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "document:download")) == 0
    with rt.db.session() as session:
        assert session.scalar(select(func.coalesce(func.sum(QuotaUsage.used), 0))) == 0


def test_a_later_view_is_undone_whole_when_its_record_cannot_be_written(api, app, rt, customer_id):
    # Once the person's counter row exists, PostgreSQL spends the unit and inserts the view in one
    # statement: the record's failure must take both back, as it does for the first view.
    document_id = api.upload(customer_id, grade=1)
    assert fetch(api, document_id).get_data() == PDF
    _refuse_audit_inserts(rt)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = fetch(api, document_id, check=False)
    assert response.status_code == 500
    assert PDF not in response.get_data()
    assert len(view_rows(rt)) == 1
    with rt.db.session() as session:
        assert session.scalar(select(func.coalesce(func.sum(QuotaUsage.used), 0))) == 1


def test_fifty_simultaneous_requests_on_a_quota_of_three_give_three(api, app, rt, customer_id):
    document_id = api.upload(customer_id, grade=1)
    set_quota(rt, document_id, 3)
    token = api.token("bob")
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/api/v1/documents/{document_id}/content", json=BODY,
                               headers={"Authorization": f"Bearer {token}"})
        response.get_data()
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(statuses) == [200] * 3 + [403] * 47
    assert len(view_rows(rt)) == 3 and len(events(rt, "content:delivered")) == 3
    refused = events(rt, "document:download", "denied")
    assert len(refused) == 47 and {e.reason_code for e in refused} == {"quota_exhausted"}
    with rt.db.session() as session:  # the chain stayed gapless
        assert session.scalar(select(func.count(AuditEvent.seq))) == session.scalar(select(func.max(AuditEvent.seq)))


def test_alerts_run_after_the_view_and_a_lost_evaluation_is_swept(api, rt, customer_id, monkeypatch, caplog):
    document_id = api.upload(customer_id, grade=1)
    assert fetch(api, document_id).get_data() == PDF  # the person's first place: no baseline, no alert

    def database_gone(*_args, **_kwargs):
        raise RuntimeError("the database went away between the commit and the rules")

    monkeypatch.setattr(view_alerts, "evaluate", database_gone)
    response = fetch(api, document_id, body={"reason": "Preparing the visit", "place": "Kitchen table"})
    assert response.status_code == 200 and response.get_data() == PDF  # the view is not harmed
    monkeypatch.undo()
    assert alerts_of(rt, "new_place") == []
    later = view_rows(rt)[-1]
    assert later.alerts_at is None
    # The rules share the unit that records the end; their failure rolled it back, and the end was
    # recorded again on its own.
    assert (later.status, later.bytes_sent) == (ViewStatus.DELIVERED, len(PDF))
    assert [f'"view_id":{later.id}' in e.detail for e in events(rt, "content:delivered")] == [False, True]
    assert "recorded alone" in caplog.text
    # Not before its own request had its chance; then once, and never again.
    with rt.db.session() as session:
        assert maintenance.run(rt, session, ctx=AccessContext.cli()).views_evaluated == 0
    with rt.db.session() as session:
        report = maintenance.run(rt, session, ctx=AccessContext.cli(), now=utcnow() + timedelta(minutes=3))
        assert report.views_evaluated == 1
    [alert] = alerts_of(rt, "new_place")
    assert later.id in alert.evidence["views"]
    with rt.db.session() as session:
        report = maintenance.run(rt, session, ctx=AccessContext.cli(), now=utcnow() + timedelta(minutes=4))
        assert report.views_evaluated == 0
    assert [a.occurrences for a in alerts_of(rt, "new_place")] == [1]


def test_the_quota_rule_is_swept_from_the_opening_record(api, rt, customer_id, monkeypatch):
    document_id = api.upload(customer_id, grade=1)
    set_quota(rt, document_id, 1)
    monkeypatch.setattr(view_alerts, "evaluate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("gone")))
    assert fetch(api, document_id).get_data() == PDF
    monkeypatch.undo()
    with rt.db.session() as session:
        maintenance.run(rt, session, ctx=AccessContext.cli(), now=utcnow() + timedelta(minutes=3))
    with rt.db.session() as session:
        assert [row.document_id for row in session.scalars(select(QuotaExhaustion))] == [document_id]


def alerts_of(rt, rule):
    with rt.db.session() as session:
        return list(session.scalars(select(Alert).where(Alert.rule == rule).order_by(Alert.id)))


class WatchedStore:
    """The real store, noting which objects were opened and which of those streams were closed."""

    def __init__(self, inner):
        self.inner = inner
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.lock = threading.Lock()

    def open(self, key):
        with self.lock:
            self.opened.append(key)
        return _Watched(self.inner.open(key), self, key)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def opened_count(self, count: int, timeout: float = 10.0) -> bool:
        """Whether `count` streams were opened within `timeout`: a read-ahead starts in its own thread, and
        under load it may start only after the answer that refused its view has gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.opened) >= count:
                    return len(self.opened) == count
            time.sleep(0.02)
        return False

    def settled(self, timeout: float = 10.0) -> bool:
        """Whether every opened stream was closed (the read-ahead closes in its own thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if sorted(self.opened) == sorted(self.closed):
                    return True
            time.sleep(0.02)
        return False


class _Watched(io.RawIOBase):
    def __init__(self, source, store, key):
        super().__init__()
        self.source, self.store, self.key = source, store, key

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __del__(self):
        pass  # only an explicit close counts: collected garbage would hide a stream left open

    def close(self):
        if not self.closed:
            with self.store.lock:
                self.store.closed.append(self.key)
            self.source.close()
        super().close()


@pytest.fixture
def watched(rt):
    real = rt.store
    rt.store = WatchedStore(real)
    yield rt.store
    rt.store = real


def test_bytes_read_while_the_opening_commits_are_closed_when_it_is_refused(api, rt, customer_id, watched):
    document_id = api.upload(customer_id, grade=1)
    set_quota(rt, document_id, 1)
    assert fetch(api, document_id).get_data() == PDF
    assert len(watched.opened) == 1 and watched.settled()
    # Policy allows, the read starts, then the spend finds no unit left: the stream is closed unread.
    assert_error(fetch(api, document_id), 403, "quota_exhausted")
    assert watched.opened_count(2) and watched.settled()
    # Refused by policy itself: nothing of the file is read at all.
    graded = api.upload(customer_id, grade=2)
    assert_error(fetch(api, graded, environ_base=TRUSTED), 403, "no_active_loan")
    assert len(watched.opened) == 2


def test_a_pdf_to_stamp_is_read_whole_while_the_opening_commits_and_closed_when_refused(
        api, rt, customer_id, watched, monkeypatch):
    opened_in: list[str] = []
    real_open = watched.open

    def noting_thread(key):
        opened_in.append(threading.current_thread().name)
        return real_open(key)

    monkeypatch.setattr(watched, "open", noting_thread)
    document_id = api.upload(customer_id, grade=2)
    api.approved_loan(document_id)
    set_quota(rt, document_id, 1)
    response = fetch(api, document_id, environ_base=TRUSTED)
    assert response.status_code == 200 and response.get_data().startswith(b"%PDF")
    assert len(opened_in) == 1 and opened_in[0].startswith("vault-read-ahead")  # not the request's thread
    assert watched.settled()
    # Policy allows, the whole read starts, then the spend finds no unit left: the file is closed unread.
    assert_error(fetch(api, document_id, environ_base=TRUSTED), 403, "quota_exhausted")
    assert watched.opened_count(2) and watched.settled()
    assert len(opened_in) == 2 and all(name.startswith("vault-read-ahead") for name in opened_in)
    # A PDF too large to hold in memory is read only once the opening has committed, by the request.
    monkeypatch.setattr(views, "COPY_IN_MEMORY", 0)
    set_quota(rt, document_id, 2)
    assert fetch(api, document_id, environ_base=TRUSTED).status_code == 200
    assert len(opened_in) == 3 and not opened_in[2].startswith("vault-read-ahead") and watched.settled()


def test_bytes_read_ahead_go_nowhere_when_the_record_cannot_be_written(api, app, rt, customer_id, watched):
    document_id = api.upload(customer_id, grade=1)
    api.token("bob")
    _refuse_audit_inserts(rt)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = fetch(api, document_id, check=False)
    assert response.status_code == 500 and PDF not in response.get_data()
    assert watched.settled()
    assert view_rows(rt) == []
