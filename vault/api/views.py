"""Opening a view of a document, and fetching its bytes once through the single-use content URL.

Opening spends a unit of the caller's quota and returns a short-lived secret URL; the bytes are
streamed from the object store through decryption straight to the client (never whole in memory),
with exactly the headers the pages send (type, disposition, length, `no-store`, a sandboxing CSP).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, request, url_for
from werkzeug.exceptions import MethodNotAllowed

from vault import policy
from vault.api.blueprint import ID, bp
from vault.api.inputs import Field, JsonBody
from vault.api.serializers import timestamp
from vault.api.spec import operation
from vault.core.actions import Action
from vault.core.audit_actions import AuditAction
from vault.models import Category
from vault.services import view_alerts
from vault.services import viewer as viewer_service
from vault.services import views as views_service
from vault.web import auth
from vault.web.content import content_response, page_response, page_url_template
from vault.web.guard import permission
from vault.web.pipeline import access_context, commit_so_far, db_session, runtime

# Refusals of a content URL that was good once: used already, or expired unused (its unit given back).
GONE = frozenset({"content_url_used", "content_url_expired"})

# What a person types to open a view, the same in both ways of opening one; judged by the policy.
_REASON = Field("reason", "string", "Why the document is read now (recorded; at least 10 characters, in words: "
                "else 403 `reason_too_short`, `reason_not_meaningful` or `reason_copies_category`).",
                max_length=2000, judged=True)
_PLACE = Field("place", "string", "Where it is read (recorded). Said at every grade, also from a trusted place: "
               "empty or blank is 403 `place_required` (a grade's trusted-place rule is judged by address, "
               "not by what is said here).", max_length=200, judged=True)
_CATEGORY = Field("category", "string", "The kind of need: required of people on notice for files needing no loan "
                  "(403 `category_required`); another value is 403 `invalid_category`; null or empty: none given.",
                  required=False, default=None, nullable=True, choices=tuple(str(c) for c in Category), judged=True)

OPEN = JsonBody(
    "ViewOpen",
    fields=(
        _REASON,
        _PLACE,
        Field("download", "boolean", "Ask for the file as an attachment (only where the grade allows).",
              required=False, default=False),
        _CATEGORY,
    ),
)


@bp.post(f"/documents/<{ID}:document_id>/views")
@permission(Action.DOCUMENT_VIEW)
@operation("Open a view: spends one unit of quota, returns its page URLs (or a download's content URL)",
           tag="views", ok=201,
           response="ViewOpened", body=OPEN, errors=(409,),
           description="Refusals (403) carry the policy's code: no_active_loan, quota_exhausted, "
                       "place_not_trusted, separation_of_duties, download_not_allowed, not_permitted...")
def open_view(document_id: int) -> Any:
    values = OPEN.parse()
    session, actor = db_session(), auth.current()
    # The document (if the caller may see it), its latest version and the caller's loans of it: one statement.
    known = views_service.opening_of(session, actor, document_id)
    document = known.document
    # As on the pages: a refused download is recorded as such, with the place the caller declared.
    if values["download"]:
        g.vault_denied_action = str(Action.DOCUMENT_DOWNLOAD)
    g.access_context = access_context().declaring(values["place"].strip())
    opened = views_service.open_view(
        runtime(), session, actor, document, reason=values["reason"], place=values["place"],
        download=values["download"], ctx=access_context(), category=values["category"] or None, known=known,
    )
    if values["download"]:
        return jsonify(view_id=opened.view.id, remaining=opened.remaining, pages=0, page_url=None,
                       content_url=content_url(opened.secret), expires_at=timestamp(opened.expires_at)), 201
    # An API client asked for the pages: its window opens now (a browser's opens when the viewer shows).
    viewer_service.start_window(runtime(), session, actor, opened.view, access_context())
    view = opened.view
    assert view.window_ends_at is not None
    return jsonify(view_id=view.id, remaining=opened.remaining, pages=view.version.page_count,
                   page_url=page_url_template(view, api=True), expires_at=timestamp(view.window_ends_at)), 201


CONTENT = JsonBody(
    "ContentOpen",
    fields=(_REASON, _PLACE, _CATEGORY),
)


@bp.post(f"/documents/<{ID}:document_id>/content")
@permission(Action.DOCUMENT_VIEW)
@operation("Open a view and receive its bytes in one request: spends one unit of quota", tag="views",
           body=CONTENT, binary=True, binary_type="*/*", errors=(409, 500, 503),
           description="For API clients: the policy check, the spend, the view and its audit record commit, "
                       "then the bytes follow in the same response (an attachment), as a download opened with "
                       "`/views` would deliver them: the original where the grade allows it, else the stamped "
                       "copy (a PDF or PNG). There is no content URL to replay. Refusals (403) carry "
                       "the policy's code: no_active_loan, quota_exhausted, place_not_trusted, download_not_allowed, "
                       "no_stamped_copy... 500/503: the file could not be read; the view was given back.")
def open_content(document_id: int) -> Any:
    values = CONTENT.parse()
    session, actor = db_session(), auth.current()
    g.vault_denied_action = str(Action.DOCUMENT_DOWNLOAD)  # refused as the download it is
    g.access_context = access_context().declaring(values["place"].strip())
    claim = views_service.open_content(
        runtime(), session, actor, document_id, reason=values["reason"], place=values["place"],
        ctx=access_context(), category=values["category"] or None,
    )
    # The view's early-warning rules wait for the last byte; the commit must not run them.
    pending = view_alerts.take(session)
    try:
        commit_so_far()  # the view and its record stand before a byte is read
    except BaseException:
        views_service.drop(claim)  # the bytes read ahead go nowhere
        raise
    delivery = views_service.open_delivery(
        runtime(), claim, then=(lambda unit: view_alerts.run_in(unit, pending)) if pending else None)
    return content_response(delivery)


@bp.get("/views/pages/<string(maxlength=300):token>/<int:number>")
@permission(Action.DOCUMENT_VIEW)
@operation("One page of an open view, stamped and marked for the caller", tag="views", binary=True,
           binary_type="image/jpeg", errors=(403,),
           description="The URL comes from `page_url` of an opened view. Only for the caller who opened it "
                       "(anyone else: 404), within the view's window (afterwards: 403 view_window_closed), "
                       "pages 1..pages (beyond: 403 page_not_found). Every page carries the visible stamp and "
                       "the invisible mark of the view; `Cache-Control: no-store`.")
def view_page(token: str, number: int) -> Any:
    g.vault_denied_action = AuditAction.VIEW_PAGE  # as the pages record a refused page
    allowed = viewer_service.allow_page(runtime(), db_session(), auth.current(), token, number, access_context())
    commit_so_far()  # drawn outside the transaction (see allow_page)
    return page_response(viewer_service.draw_page(runtime(), allowed))


@bp.get("/content/<string(maxlength=200):secret>")
@permission(Action.DOCUMENT_VIEW)
@operation("The bytes of an opened view, once", tag="views", binary=True, errors=(410, 500, 503),
           description="Only for the token's owner who opened the view (anyone else: 404), within its short "
                       "lifetime, once (afterwards: 410). 403 when the loan it was opened under has ended.")
def content(secret: str) -> Any:
    if request.method == "HEAD":
        # A HEAD would spend the single use without delivering a byte.
        raise MethodNotAllowed(valid_methods=["GET"])
    g.vault_denied_action = AuditAction.CONTENT_OPEN  # refusals are recorded as the pages record them
    try:
        claim = views_service.claim_delivery(runtime(), db_session(), auth.current(), secret, access_context())
        commit_so_far()  # the claim stands before a byte is read (see the views service)
        delivery = views_service.open_delivery(runtime(), claim)
    except policy.Denied as exc:
        if exc.decision.code not in GONE:
            raise
        # The pipeline's handler records the refusal as for any other; only the status says "gone".
        response = current_app.make_response(current_app.handle_user_exception(exc))
        response.status_code = 410
        return response
    return content_response(delivery)


def content_url(secret: str) -> str:
    """An absolute URL on the host the client called (behind proxies, as `VAULT_PROXY_COUNT` trusts)."""
    return url_for("api.content", secret=secret, _external=True)
