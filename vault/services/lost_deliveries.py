"""Content deliveries whose end was never recorded: settled as partial by the maintenance sweep.

A delivery is claimed (`delivering`) before its first byte and its end (`delivered`, `partial`, or a
refund) is recorded when the stream ends. When the process streaming it dies (a worker killed, a machine
lost) or the database is unreachable at that moment, the end is never written and the view would hold
its unit as `delivering` forever, counted neither as delivered nor as given back. Bytes may have left,
so the unit cannot be refunded; the honest account is "partial": spent, with an audit record saying
the delivery was lost. Reading views (the viewer's window) end by their window instead and are left
to `viewer.close_lapsed`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.models import Document, DocumentView, ViewStatus, utcnow
from vault.runtime import Runtime

# Far longer than any download of the largest upload takes; a stream still running is never touched.
LOST_AFTER = timedelta(hours=1)


def settle_lost(rt: Runtime, session: Session, *, ctx: AccessContext, now: datetime | None = None) -> int:
    """Mark deliveries claimed more than `LOST_AFTER` ago and never ended as partial; return how many."""
    now = now or utcnow()
    views = session.scalars(
        select(DocumentView).where(DocumentView.status == ViewStatus.DELIVERING,
                                   DocumentView.window_ends_at.is_(None),
                                   DocumentView.started_at < now - LOST_AFTER)
        .order_by(DocumentView.id)
    ).all()
    settled = 0
    for view in views:
        changed = session.execute(
            update(DocumentView)
            .where(DocumentView.id == view.id, DocumentView.status == ViewStatus.DELIVERING)
            .values(status=ViewStatus.PARTIAL, completed_at=now)
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:
            continue  # its own stream recorded the end meanwhile
        document = session.get(Document, view.document_id)
        rt.audit.record(
            session, action=AuditAction.CONTENT_PARTIAL, actor=None, ctx=ctx, outcome="failed",
            customer_id=document.customer_id if document else None, document_id=view.document_id,
            version_id=view.version_id, loan_id=view.loan_id, subject_user_id=view.user_id,
            detail={"view_id": view.id, "bytes": view.bytes_sent, "cause": "delivery_lost"},
        )
        session.expire(view)
        settled += 1
    return settled
