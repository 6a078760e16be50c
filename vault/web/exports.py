"""The audit log's export as a download, for the auditor's desk and the API alike.

The export is recorded and committed before its snapshot opens and before its first byte leaves (no
record, no export); its manifest is saved once the last byte has gone.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, request, url_for

from vault.audit.export import FORMATS, MEDIA_TYPES, AuditExport, save_manifest
from vault.audit.filters import AuditFilter
from vault.audit.names import export_file_name
from vault.models import utcnow
from vault.services import audit as service
from vault.web import auth
from vault.web.pipeline import access_context, commit_so_far, db_session, runtime


def stream_export(filters: AuditFilter, fmt: str, *, manifest_endpoint: str) -> Response:
    """Record the export, open its snapshot and stream it."""
    rt = runtime()
    if request.method == "HEAD":
        # A HEAD (which a GET route answers too) would record and checkpoint an export whose bytes never
        # leave and whose manifest is never saved.
        abort(405)
    if fmt not in FORMATS:
        abort(400)
    checkpointer = rt.audit.checkpoints
    assert checkpointer is not None
    session = db_session()
    event_seq = service.record_export(rt, session, actor=auth.current(), ctx=access_context(), filters=filters,
                                      fmt=fmt, destination="download")
    # Named (the names are read) while the request's transaction is still open: after the commit a new
    # one would begin, and hold the write lock SQLite gives it while the checkpoint waits for that lock.
    name = export_file_name(session, filters, fmt, event_seq, utcnow())
    # Committed before the snapshot opens and before the first byte: no record, no export.
    commit_so_far()
    export = AuditExport(rt.db, checkpointer, filters, fmt).open()

    def body() -> Any:
        try:
            yield from export.chunks()
            save_manifest(rt.store, event_seq, export.manifest(file_name=name, event_seq=event_seq))
        finally:
            export.close()

    response = Response(body(), mimetype=MEDIA_TYPES[fmt])
    response.call_on_close(export.close)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["X-Vault-Export-Manifest"] = url_for(manifest_endpoint, event_seq=event_seq)
    return response
