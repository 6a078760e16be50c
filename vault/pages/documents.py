"""Document pages: the upload form, a document's metadata and versions, and new versions by its compiler.

No route here returns a file's content: reading goes through the view service (loans, quotas, audit).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from storage import StorageError
from vault import policy
from vault.core.actions import Action
from vault.core.errors import ServiceError
from vault.models import Document, User
from vault.pages.customers import hidden_as_not_found
from vault.pages.forms.documents import NO_CUSTODIAN, UploadForm, VersionForm, choice, grade_choices
from vault.policy import grades as policy_grades
from vault.services import documents as documents_service
from vault.services.uploads import ALLOWED_EXTENSIONS, human_size
from vault.web import auth, navigation
from vault.web.guard import permission
from vault.web.pipeline import access_context, commit_so_far, db_session, keep_work, runtime

bp = Blueprint("documents", __name__, url_prefix="/documents")
navigation.add("documents.new", Action.DOCUMENT_UPLOAD, "Upload a file")

# Shown on the forms so people know the rules before they pick a file.
ACCEPTED = ", ".join("." + ext for ext in ALLOWED_EXTENSIONS)


def _upload_rules() -> dict[str, Any]:
    return {"accepted": ACCEPTED, "accept_attr": ",".join("." + ext for ext in ALLOWED_EXTENSIONS),
            "limit": human_size(runtime().settings.max_upload_bytes),
            "custodian_hint": policy_grades.custodian_hint(runtime().settings.grades)}


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> Any:
    # The request is refused before its body is read, so the form cannot be shown again with its
    # values; say why in plain words rather than with the server's generic 413 page.
    limit = human_size(runtime().settings.max_upload_bytes)
    return render_template("documents/too_large.html", limit=limit), 413


@bp.route("/new", methods=["GET", "POST"])
@permission(Action.DOCUMENT_UPLOAD)
def new() -> Any:
    session, actor = db_session(), auth.current()
    form = UploadForm()
    customers = documents_service.upload_choices(session, actor)
    form.customer.choices = [choice(c.id, c.name) for c in customers]
    form.grade.choices = grade_choices(runtime().settings.grades)
    custodians = documents_service.custodian_choices(session, actor)
    form.custodian.choices = [choice(NO_CUSTODIAN, _("None yet")),
                              *(choice(u.id, f"{u.display_name} ({u.username})") for u in custodians)]
    if request.method == "GET":
        form.customer.data = request.args.get("customer", type=int)
    status = 200
    if form.validate_on_submit():
        with hidden_as_not_found(customer_id=form.customer.data):
            customer = documents_service.get_customer(session, actor, form.customer.data)
        custodian = session.get(User, form.custodian.data) if form.custodian.data != NO_CUSTODIAN else None
        upload = form.file.data
        try:
            document = documents_service.upload_document(
                runtime(), session, actor, customer, title=form.title.data, grade=form.grade.data,
                stream=upload.stream, filename=upload.filename, content_type=upload.mimetype,
                ctx=access_context(), custodian=custodian, let_go=commit_so_far)
        except ServiceError as exc:
            session.rollback()
            _field_for(exc.code, form).errors = [exc.message]
            status = 400
        except StorageError:
            session.rollback()
            current_app.logger.exception("upload failed in the object store")
            flash(_("The file store cannot be reached right now; nothing was saved. Please try again later."),
                  "error")
            status = 503
        else:
            flash(_("“%(title)s” is stored, encrypted.", title=document.title), "success")
            return redirect(url_for("documents.show", document_id=document.id))
    elif request.method == "POST":
        status = 400
    # The form names these customers: recorded in the unit that answers (after any rollback above), and kept
    # with an error answer, which names them as well.
    documents_service.record_upload_listing(runtime(), session, actor, customers, ctx=access_context())
    if status >= 400:
        keep_work()
    return render_template("documents/new.html", form=form, **_upload_rules()), status


def _field_for(code: str, form: UploadForm) -> Any:
    if code == "invalid_title":
        return form.title
    if code == "invalid_custodian":
        return form.custodian
    return form.file


@bp.route("/<int:document_id>")
@permission(Action.DOCUMENT_READ)
def show(document_id: int) -> Any:
    return _render_document(document_id, VersionForm())


@bp.route("/<int:document_id>/versions", methods=["POST"])
@permission(Action.DOCUMENT_VERSION)
def add_version(document_id: int) -> Any:
    session, actor = db_session(), auth.current()
    form = VersionForm()
    if not form.validate_on_submit():
        return _render_document(document_id, form, status=400, again=True)
    with hidden_as_not_found(document_id=document_id):
        document = documents_service.get_document(session, actor, document_id)
    upload = form.file.data
    try:
        version = documents_service.add_version(
            runtime(), session, actor, document, stream=upload.stream, filename=upload.filename,
            content_type=upload.mimetype, ctx=access_context(), let_go=commit_so_far)
    except ServiceError as exc:
        session.rollback()
        form.file.errors = [exc.message]
        return _render_document(document_id, form, status=400, again=True)
    except StorageError:
        session.rollback()
        current_app.logger.exception("new version failed in the object store")
        flash(_("The file store cannot be reached right now; nothing was saved. Please try again later."), "error")
        return _render_document(document_id, form, status=503, again=True)
    flash(_("Version %(number)d is stored, encrypted.", number=version.number), "success")
    return redirect(url_for("documents.show", document_id=document_id))


def _render_document(document_id: int, form: VersionForm, status: int = 200, *, again: bool = False) -> Any:
    """The document's page, its read recorded. `again`: shown once more after a failed new version, so the
    read is marked as a retry on the page already open (not a second visit), and kept though the answer is
    an error: a failed version left nothing (rolled back), so keeping the work keeps this record alone."""
    session, actor = db_session(), auth.current()
    with hidden_as_not_found(document_id=document_id):
        document: Document = documents_service.read_document(runtime(), session, actor, document_id, shown="page",
                                                              ctx=access_context(), again=again)
    if again:
        keep_work()
    return render_template(
        "documents/show.html",
        document=document,
        rule=runtime().settings.grade(document.grade),
        form=form,
        may_add_version=bool(policy.authorize(actor, Action.DOCUMENT_VERSION, document)),
        **_upload_rules(),
    ), status
