"""View quota overrides: setting how many views one person (custodians, approvers) or everyone (approvers)
gets of a document, and the list of overrides custodians keep an eye on, as on the custody page.

The same service and policy as the pages: nobody who may borrow sets a quota, nor the file's compiler;
an unknown person is the policy's `quota_unknown_person`, a value out of range its `quota_invalid`, so
these refusals are recorded as on the page.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault.api.blueprint import ID, bp
from vault.api.inputs import Field, JsonBody
from vault.api.serializers import SCHEMAS, _object, _ref, user_ref
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import Document, User
from vault.policy.loans import MAX_QUOTA
from vault.services import accounts
from vault.services import documents as documents_service
from vault.services import loans as loans_service
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

QUOTA = JsonBody(
    "QuotaOverrideSet",
    fields=(
        Field("views", "integer", f"How many views each person gets (0 to {MAX_QUOTA}); null: back to the "
                                  "number of the document, or of the grade for a document-wide override. Another "
                                  "number is refused by the policy (403 `quota_invalid`).", nullable=True),
        Field("person", "string", "The user name of the one person the quota is for; null or empty: everyone "
                                  "(approvers only).", required=False, default=None, max_length=64, nullable=True),
    ),
)

_ID = {"type": "integer", "minimum": 1}
SCHEMAS["QuotaOverride"] = _object({
    "document": _object({"id": _ID, "title": {"type": "string"}, "grade": {"type": "integer", "enum": [1, 2, 3]}}),
    "person": {"oneOf": [_ref("UserRef"), {"type": "null"}], "description": "null: the document's quota for "
                                                                               "everyone."},
    "views": {"type": ["integer", "null"], "minimum": 0, "description": "Views per person; null: the default "
                                                                        "again."},
}, "A view quota set apart from the grade's number.")
SCHEMAS["QuotaOverrideList"] = _object({
    "overrides": {"type": "array", "items": _ref("QuotaOverride"),
                  "description": "Document-wide overrides (by title), then each person's (by title, user name)."},
})


def override_json(document: Document, person: User | None, views: int | None) -> dict[str, Any]:
    return {"document": {"id": document.id, "title": document.title, "grade": document.grade},
            "person": user_ref(person), "views": views}


@bp.post(f"/documents/<{ID}:document_id>/quota")
@permission(Action.QUOTA_OVERRIDE)
@operation("Set a document's view quota for one person, or for everyone (audited)", tag="documents",
           response="QuotaOverride", body=QUOTA,
           description="Recorded as `quota:override` with the previous number. Views already spent stay spent. "
                       "403 `separation_of_duties` (the file's compiler), `quota_own_reach` (the caller may "
                       "borrow, or names themselves), `quota_document_wide` (everyone's quota is an approver's "
                       "call), `quota_unknown_person`, `quota_invalid`, `quota_person_departing` (raising the "
                       "quota of a person on notice; lowering it stays open). A document-wide number lifts nobody "
                       "on notice above the lower of the grade's and the previous one: for a person on notice the "
                       "quota is the lowest of the grade's, the document's and their own.")
def set_quota(document_id: int) -> Any:
    values = QUOTA.parse()
    session, actor = db_session(), auth.current()
    document = documents_service.get_document(session, actor, document_id)
    name = (values["person"] or "").strip()
    person = accounts.find_user(session, name) if name else None
    loans_service.set_quota_override(runtime(), session, actor, document, values["views"], person=person,
                                     person_given=bool(name), ctx=access_context())
    return jsonify(override_json(document, person, values["views"]))


@bp.get("/quota-overrides")
@permission(Action.LOAN_RELEASE)
@operation("Every view quota set apart from the grade's number (custodians)", tag="documents",
           response="QuotaOverrideList",
           description="What the custody page lists: documents whose quota was changed for everyone, and each "
                       "person's own quota of a document; only documents the caller sees (those of other "
                       "customers are not named). `POST /documents/{id}/quota` with `views: null` "
                       "takes one back.")
def list_quota_overrides() -> Any:
    found = loans_service.quota_overrides(db_session(), auth.current())
    return jsonify(overrides=[override_json(d, None, d.view_quota) for d in found.documents]
                   + [override_json(d, person, usage.view_quota) for usage, d, person in found.personal])
