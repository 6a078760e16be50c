"""Tracing a leaked copy: the view its invisible mark or stamped-PDF claim names, and who held it.

Used by `vault trace FILE`, the auditors' "Trace a leaked copy" and `POST /api/v1/audit/trace`, all
with the one marking secret (`services.marking_key`). Every trace is recorded ("audit:trace"), found or
not, with the SHA-256 of the file examined.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import ServiceError
from vault.marking import MarkingError, TraceResult, trace_apart
from vault.models import DocumentView, User
from vault.runtime import Runtime
from vault.services.marking_key import marking_secret

MAX_TRACE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Traced:
    """What a trace found: the mark (or None) and, when the view exists, its facts."""

    result: TraceResult | None
    view: DocumentView | None

    def as_dict(self) -> dict[str, Any]:
        if self.result is None:
            return {"found": False}
        out: dict[str, Any] = {"found": True, "view_id": self.result.view_id, "method": self.result.method,
                               "page": self.result.page, "forged": list(self.result.forged)}
        view = self.view
        if view is not None:
            out.update({
                "person": {"id": view.user_id, "login": view.user.username, "name": view.user.display_name},
                "opened_at": view.opened_at.isoformat(), "place": view.named_place or view.declared_place,
                "client_addr": view.client_addr, "reason": view.reason, "download": view.download,
                "document": {"id": view.document_id, "title": view.document.title,
                             "version_id": view.version_id, "grade": view.document.grade},
                "customer": {"id": view.document.customer_id, "name": view.document.customer.name},
            })
        return out


def trace_file(rt: Runtime, session: Session, data: bytes, *, actor: User | None, ctx: AccessContext,
               name: str = "") -> Traced:
    """Trace ``data`` and record the trace in the caller's unit of work.

    Raises:
        ServiceError: `trace_unreadable` (not a PDF, PNG, JPEG or WebP that can be read) or
            `trace_too_large`.
    """
    if len(data) > MAX_TRACE_BYTES:
        raise ServiceError("trace_too_large", _l("The file is too large to trace."))
    try:
        result = trace_apart(data, marking_secret(rt.settings))
    except MarkingError as exc:
        rt.audit.record(session, action=AuditAction.AUDIT_TRACE, actor=actor, ctx=ctx, outcome="failed",
                        reason_code="trace_unreadable",
                        detail={"sha256": hashlib.sha256(data).hexdigest(), "name": name[:200]})
        raise ServiceError("trace_unreadable", _l("The file cannot be traced: %(exc)s.", exc=exc)) from None
    view = session.get(DocumentView, result.view_id) if result is not None else None
    detail: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "name": name[:200],
                              "found": result is not None}
    targets: dict[str, Any] = {}
    if result is not None:
        detail.update({"view_id": result.view_id, "method": result.method})
    if view is not None:
        targets = {"document_id": view.document_id, "customer_id": view.document.customer_id,
                   "subject_user_id": view.user_id}
    rt.audit.record(session, action=AuditAction.AUDIT_TRACE, actor=actor, ctx=ctx, detail=detail, **targets)
    return Traced(result, view)
