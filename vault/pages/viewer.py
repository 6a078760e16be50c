"""The viewer: the page a view redirects to, its stamped page images, and its heartbeat.

`POST /documents/<id>/view` spends a view and redirects here (post/redirect/get), so Back and reload
show the same view again and never spend another. The page images are served by `page_image`, bound to
the view and the person by a signed token, and answered with `no-store` and a sandboxing policy.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, render_template, request, session, url_for

from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.core.errors import NotFound, ServiceError
from vault.models import utcnow
from vault.services import viewer as viewer_service
from vault.services import views as views_service
from vault.web import auth
from vault.web.content import page_response, page_url_template
from vault.web.guard import permission
from vault.web.pipeline import access_context, commit_so_far, db_session, not_found_response, runtime

bp = Blueprint("viewer", __name__)
bp.register_error_handler(NotFound, not_found_response)

# A page image is an image and nothing else: it runs nothing, is kept nowhere, framed by nobody else.
DOWNLOAD_SECRETS = "vault_download_links"


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    return render_template("loans/problem.html", message=exc.message, code=exc.code), exc.status


def remember_download(view_id: int, secret: str) -> None:
    """Keep a download view's single-use link for its viewer page (the cookie is the person's own)."""
    links = dict(session.get(DOWNLOAD_SECRETS) or {})
    links = {k: v for k, v in links.items() if k != str(view_id)}
    links[str(view_id)] = secret
    session[DOWNLOAD_SECRETS] = dict(list(links.items())[-5:])


@bp.route("/views/<int:view_id>")
@permission(Action.DOCUMENT_VIEW)
def show(view_id: int) -> Any:
    """The viewer of one view; shown again (not spent again) on reload within the window."""
    session_, actor = db_session(), auth.current()
    view = viewer_service.get_view(session_, actor, view_id)
    document = view.document
    remaining = views_service.remaining_views(session_, actor, document)
    download_url = None
    if view.download:
        secret = (session.get(DOWNLOAD_SECRETS) or {}).get(str(view.id))
        if secret and view.status == "reserved":
            download_url = url_for("content.deliver", secret=secret)
        return render_template("viewer/download.html", view=view, document=document, remaining=remaining,
                               download_url=download_url, seconds=runtime().settings.content_url_seconds)
    is_open = viewer_service.start_window(runtime(), session_, actor, view, access_context())
    pages = list(view.version.pages) if is_open else []
    return render_template(
        "viewer/show.html", view=view, document=document, remaining=remaining, is_open=is_open, pages=pages,
        page_url=page_url_template(view) if is_open else "",
        heartbeat_seconds=viewer_service.HEARTBEAT_SECONDS, now=utcnow(),
    )


@bp.route("/views/pages/<string(maxlength=300):token>/<int:number>")
@permission(Action.DOCUMENT_VIEW)
def page_image(token: str, number: int) -> Any:
    g.vault_denied_action = AuditAction.VIEW_PAGE  # a refused page is recorded under this name
    allowed = viewer_service.allow_page(runtime(), db_session(), auth.current(), token, number, access_context())
    commit_so_far()  # drawn outside the transaction (see allow_page)
    return page_response(viewer_service.draw_page(runtime(), allowed))


@bp.route("/views/<int:view_id>/heartbeat", methods=["POST"])
@permission(Action.DOCUMENT_VIEW)
def heartbeat(view_id: int) -> Any:
    """Time on the document, from the viewer while it is visible (JSON, with the CSRF header)."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    seen = body.get("pages_seen", 0)
    seen = seen if isinstance(seen, int) and not isinstance(seen, bool) else 0
    view = viewer_service.heartbeat(runtime(), db_session(), auth.current(), view_id, pages_seen=seen,
                                    closing=body.get("closing") is True, ctx=access_context())
    return jsonify(seconds_open=view.seconds_open, pages_seen=view.pages_seen,
                   open=view.closed_at is None and view.window_ends_at is not None
                   and view.window_ends_at > utcnow())
