"""Fifty simultaneous openings by one person on a quota of three give exactly three views, on SQLite
and on PostgreSQL: through the service with fifty sessions, and through the pages with fifty clients."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from tests.loans.helpers import PLACE, REASON, Audit, make_document, used, view_rows
from tests.support.simultaneous import at_once, run_threads
from vault.core.context import AccessContext
from vault.models import AuditEvent, Document, Role, User
from vault.services import views

OPENERS = 50


def test_fifty_service_calls_spend_exactly_three_units(rt, users):
    ann = users.make("ann", Role.BORROWER)
    carl = users.make("carl", Role.COMPILER)
    doc = make_document(rt, compiler_id=carl.id, grade=1, view_quota=3)
    audit = Audit(rt)

    def load(session):
        document = session.get(Document, doc)
        _ = document.versions
        return session.get(User, ann.id), document

    def open_one(session, loaded) -> None:
        actor, document = loaded
        views.open_view(rt, session, actor, document, reason=REASON, place=PLACE, download=False,
                        ctx=AccessContext(client_addr="10.0.0.9"))

    results = at_once(rt, OPENERS, load, open_one, success="opened")
    assert sorted(results) == ["opened"] * 3 + ["quota_exhausted"] * 47, results
    assert used(rt, ann.id, doc) == 3
    assert len(view_rows(rt)) == 3
    assert len(audit.since("document:view", "allowed")) == 3


def test_fifty_page_requests_spend_exactly_three_units(world, rt, app):
    doc = world.document(1, view_quota=3)
    first = world.browser("ann")
    cookie = first.client.get_cookie("vault_session")
    clients = []
    for _ in range(OPENERS):
        client = app.test_client()
        client.set_cookie("vault_session", cookie.value)
        clients.append(client)
    audit = world.audit.mark()
    barrier = threading.Barrier(OPENERS)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(client):
        def post() -> None:
            barrier.wait()
            response = client.post(f"/documents/{doc}/view",
                                   data={"csrf_token": first.token, "reason": REASON, "place": PLACE})
            with lock:
                statuses.append(response.status_code)
        return post

    run_threads([worker(client) for client in clients])
    assert sorted(statuses) == [303] * 3 + [403] * 47
    assert used(rt, world.ids["ann"], doc) == 3
    assert len(view_rows(rt)) == 3
    assert len(audit.since("document:view", "allowed")) == 3
    refused = audit.since("document:view", "denied")
    assert len(refused) == 47 and {e.reason_code for e in refused} == {"quota_exhausted"}
    with rt.db.session() as session:  # the audit chain stayed gapless under the load
        assert session.scalar(select(func.count(AuditEvent.seq))) == session.scalar(select(func.max(AuditEvent.seq)))
