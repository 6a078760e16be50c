"""`GET /content/<secret>`: the bytes of an opened view, once, to the person who opened it.

The response is built so the browser shows (or saves) the file and does nothing else with it: no
caching, no type sniffing, and a sandboxing Content-Security-Policy, since a document's bytes are
whatever the uploader made them and must not run as a page of this site.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, render_template, request
from werkzeug.exceptions import MethodNotAllowed

from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.errors import ServiceError
from vault.services import views as views_service
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, commit_so_far, db_session, runtime

bp = Blueprint("content", __name__)

# The browser's own viewers style their page inline (the image viewer does), so inline styles are
# allowed; scripts are not, and the sandbox keeps the document away from this site's origin.
CONTENT_CSP = ("sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
# Chromium refuses to start its PDF viewer in a sandboxed document, so a PDF gets the same policy without
# the sandbox: uploads are sniffed and can never be HTML, and the viewer runs in its own process.
PDF_CSP = CONTENT_CSP.removeprefix("sandbox; ") + "; object-src 'self'"


def content_response(delivery: views_service.Delivery) -> Response:
    """The streaming response for a delivery (also usable by any other route serving one)."""
    response = Response(delivery.chunks(), status=200, mimetype=delivery.content_type, direct_passthrough=True)
    response.headers["Content-Length"] = str(delivery.size)
    response.headers["Content-Disposition"] = delivery.disposition
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    pdf = delivery.content_type.split(";")[0].strip() == "application/pdf"
    response.headers["Content-Security-Policy"] = PDF_CSP if pdf else CONTENT_CSP
    return response


@bp.route("/content/<string(maxlength=200):secret>")
@permission(Action.DOCUMENT_VIEW)
def deliver(secret: str) -> Any:
    if request.method == "HEAD":
        # A HEAD would spend the single use without delivering a byte.
        raise MethodNotAllowed(valid_methods=["GET"])
    g.vault_denied_action = AuditAction.CONTENT_OPEN
    try:
        claim = views_service.claim_delivery(runtime(), db_session(), auth.current(), secret, access_context())
        commit_so_far()  # the claim stands before a byte is read (see the views service)
        delivery = views_service.open_delivery(runtime(), claim)
    except ServiceError as exc:
        return render_template("loans/problem.html", message=exc.message, code=exc.code), exc.status
    return content_response(delivery)
