"""Documents: upload (multipart), metadata with versions and the caller's remaining views, new versions."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault import policy
from vault.api import serializers
from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import Field, FormBody
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import User
from vault.services import documents as documents_service
from vault.services import views as views_service
from vault.services.accounts import find_user
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, commit_so_far, db_session, runtime

_FILE_NOTE = "The file's type is judged by its content and must agree with its name's extension."

UPLOAD = FormBody(
    "DocumentUpload",
    fields=(
        Field("title", "string", "What the file is, as people will see it.", max_length=200),
        Field("grade", "integer", "1, 2 or 3: who may read it and under which conditions.", minimum=1, maximum=3),
        Field("custodian", "string", "User name of the custodian who keeps the file (optional).",
              required=False, max_length=64),
    ),
    files=("file",),
    description="A new document and its first version. " + _FILE_NOTE,
)
NEW_VERSION = FormBody("VersionUpload", fields=(), files=("file",),
                       description="A new version of the document. " + _FILE_NOTE)


@bp.post(f"/customers/<{ID}:customer_id>/documents")
@permission(Action.DOCUMENT_UPLOAD)
@operation("Upload a document for a customer", tag="documents", ok=201, response="Created", body=UPLOAD,
           errors=(503,))
def upload_document(customer_id: int) -> Any:
    session, actor = db_session(), auth.current()
    commit_so_far()  # the body may take long to arrive: no transaction (on SQLite, the write lock) meanwhile
    values, files = UPLOAD.parse()
    customer = documents_service.get_customer(session, actor, customer_id)
    custodian = _custodian(session, values["custodian"])
    upload = files["file"]
    document = documents_service.upload_document(
        runtime(), session, actor, customer, title=values["title"], grade=values["grade"], stream=upload.stream,
        filename=upload.filename, content_type=upload.mimetype, ctx=access_context(), custodian=custodian,
        let_go=commit_so_far,
    )
    return jsonify(id=document.id, version=1), 201


@bp.get(f"/documents/<{ID}:document_id>")
@permission(Action.DOCUMENT_READ)
@operation("A document's metadata, versions and the caller's remaining views", tag="documents",
           response="Document")
def show_document(document_id: int) -> Any:
    session, actor = db_session(), auth.current()
    document = documents_service.read_document(runtime(), session, actor, document_id, shown="json",
                                               ctx=access_context())
    # Only people who may open views at all have a number of views left; for others it is null.
    remaining = (views_service.remaining_views(session, actor, document)
                 if policy.authorize(actor, Action.DOCUMENT_VIEW) else None)
    return jsonify(serializers.document(document, remaining))


@bp.post(f"/documents/<{ID}:document_id>/versions")
@permission(Action.DOCUMENT_VERSION)
@operation("Upload a new version (its compiler only)", tag="documents", ok=201, response="Created",
           body=NEW_VERSION, errors=(503,))
def add_version(document_id: int) -> Any:
    session, actor = db_session(), auth.current()
    commit_so_far()  # as for an upload
    _values, files = NEW_VERSION.parse()
    document = documents_service.get_document(session, actor, document_id)
    upload = files["file"]
    version = documents_service.add_version(
        runtime(), session, actor, document, stream=upload.stream, filename=upload.filename,
        content_type=upload.mimetype, ctx=access_context(), let_go=commit_so_far,
    )
    return jsonify(id=document.id, version=version.number), 201


def _custodian(session: Any, username: str | None) -> User | None:
    if not username:
        return None
    user = find_user(session, username.strip())
    if user is None:
        raise invalid({"custodian": "is not a known user name"})
    return user
