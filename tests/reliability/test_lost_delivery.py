"""A delivery whose process died before it recorded its end is settled as partial by the sweep.

(The fault itself, a worker SIGKILLed while it streams, is `test_faults.py::test_a_worker_killed_mid_request`;
here the sweep's rules are checked on both databases with the clock moved.)
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.support.factories import make_document
from vault.core.context import AccessContext
from vault.models import AuditEvent, Document, DocumentView, Role, User, ViewStatus, utcnow
from vault.services import agreement, maintenance, views

CTX = AccessContext(client_addr="10.0.0.9")


def _claimed(rt, users) -> int:
    """A download view of ann's, claimed for delivery (its stream started), then abandoned."""
    ann = users.make("ann", Role.BORROWER)
    carl = users.make("carl", Role.COMPILER)
    document_id = make_document(rt, compiler_id=carl.id, grade=1)
    with rt.db.session() as session:
        actor = session.get(User, ann.id)
        agreement.accept(rt, session, actor, AccessContext.cli())
        opened = views.open_view(rt, session, actor, session.get(Document, document_id), reason="Prepare the visit",
                                 place="Head office", download=True, ctx=CTX)
        secret = opened.secret
    with rt.db.session() as session:
        return views.claim_delivery(rt, session, session.get(User, ann.id), secret, CTX).view_id


def _status(rt, view_id: int) -> str:
    with rt.db.session() as session:
        view = session.get(DocumentView, view_id)
        assert view is not None
        return view.status


def test_a_lost_delivery_is_settled_as_partial_after_an_hour(rt, users) -> None:
    view_id = _claimed(rt, users)
    assert _status(rt, view_id) == ViewStatus.DELIVERING
    with rt.db.session() as session:  # a stream still running (minutes old) is left alone
        maintenance.run(rt, session, ctx=AccessContext.cli(), now=utcnow() + timedelta(minutes=50))
    assert _status(rt, view_id) == ViewStatus.DELIVERING
    with rt.db.session() as session:
        maintenance.run(rt, session, ctx=AccessContext.cli(), now=utcnow() + timedelta(minutes=61))
    assert _status(rt, view_id) == ViewStatus.PARTIAL
    with rt.db.session() as session:
        record = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert record is not None and record.action == "content:partial"
        assert '"delivery_lost"' in record.detail
        # Settled once: a second sweep changes nothing and records nothing.
        last = record.seq
        maintenance.run(rt, session, ctx=AccessContext.cli(), now=utcnow() + timedelta(hours=3))
        assert session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).first() == last
