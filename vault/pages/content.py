"""`GET /content/<secret>`: the bytes of an opened view, once, to the person who opened it.

The response itself is built by `vault.web.content`, shared with the API.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request
from werkzeug.exceptions import MethodNotAllowed

from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.errors import ServiceError
from vault.services import views as views_service
from vault.web import auth
from vault.web.content import content_response
from vault.web.guard import permission
from vault.web.pipeline import access_context, commit_so_far, db_session, runtime

bp = Blueprint("content", __name__)

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
