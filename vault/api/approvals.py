"""The approver's batch: several requested loans approved with one comment, as on the approvals page.

One comment saves typing, not judgement: `loans.approve_many` decides and records every loan on its own,
so the answer lists the loans approved and, for each one refused, the policy's reason code (separation of
duties, a request already decided, a loan the caller does not see: `not_found`, as a probe on its id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import jsonify
from flask_babel import lazy_gettext as _l

from vault.api.blueprint import bp
from vault.api.errors import ApiError, invalid
from vault.api.inputs import MAX_ID, Field, JsonBody, check_fields, read_json
from vault.api.serializers import SCHEMAS, _object
from vault.api.spec import operation
from vault.core.actions import Action
from vault.services import loans as loans_service
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

# At most one queue page at once, as on the approvals page.
MAX_BATCH = loans_service.PAGE_SIZE


@dataclass(frozen=True)
class IdListBody(JsonBody):
    """A JSON object body with a list of ids (`ids_field`, 1 to `max_ids` of them) beside plain fields."""

    ids_field: str = "ids"
    ids_description: str = ""
    max_ids: int = MAX_BATCH

    def ids_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "minItems": 1, "maxItems": self.max_ids, "description": self.ids_description}

    def schema(self) -> dict[str, Any]:
        schema = super().schema()
        schema["properties"] = {self.ids_field: self.ids_schema(), **schema["properties"]}
        schema["required"] = [self.ids_field, *schema.get("required", [])]
        return schema

    def parse(self) -> dict[str, Any]:
        """The ids (each once, in the order given) and the other fields, or a 422 naming every bad one."""
        data = read_json()
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_request", _l("The body must be a JSON object."))
        rest = {name: value for name, value in data.items() if name != self.ids_field}
        problems: dict[str, str] = {}
        try:
            values = check_fields(self.fields, rest)
        except ApiError as exc:
            problems.update(exc.fields)
            values = {}
        ids, problem = self._ids(data.get(self.ids_field))
        if problem:
            problems[self.ids_field] = problem
        if problems:
            raise invalid(problems)
        return {**values, self.ids_field: ids}

    def _ids(self, value: Any) -> tuple[list[int], str | None]:
        if value is None:
            return [], "is required"
        if not isinstance(value, list):
            return [], "must be a list of ids"
        if not value:
            return [], "must name at least one id"
        if len(value) > self.max_ids:
            return [], f"may name at most {self.max_ids} ids"
        # bool is an int in Python, but `true` is not an id.
        if any(isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_ID for item in value):
            return [], f"must hold whole numbers from 1 to {MAX_ID}"
        return list(dict.fromkeys(value)), None


BATCH = IdListBody(
    "LoanBatchApproval",
    fields=(Field("comment", "string", "The approver's comment, kept with each approval.", required=False,
                  default="", max_length=2000),),
    ids_field="loan_ids",
    ids_description="The requested loans to approve (each once; a repeated id counts once).",
)

_ID = {"type": "integer", "minimum": 1}
SCHEMAS["LoanBatchApproved"] = _object({
    "approved": {"type": "array", "items": _ID, "description": "The loans approved by this call, in the order "
                                                                  "given (see `GET /loans/{id}` for each one's "
                                                                  "state: active, or still waiting)."},
    "refused": {"type": "array", "items": _object({
        "id": _ID,
        "code": {"type": "string", "description": "The policy's reason code (`not_found`: no such loan, or "
                                                  "one the caller does not see)."},
        "error": {"type": "string", "description": "The reason, in words."},
    }), "description": "The loans not approved, each with why; each refusal is recorded."},
}, "Each loan approved or refused on its own.")


@bp.post("/loans/approve")
@permission(Action.LOAN_APPROVE)
@operation("Approve several requested loans with one comment (approvers)", tag="loans",
           response="LoanBatchApproved", body=BATCH,
           description="Each loan is decided on its own, as if approved alone, and recorded as `loan:approve` "
                       "(refusals too, with their reason code): `separation_of_duties` (the caller's own request "
                       "or file), `already_decided`, `invalid_state`, `not_found` (no such loan, or one the "
                       f"caller does not see). At most {MAX_BATCH} ids; 422 for an empty or longer list.")
def approve_loans() -> Any:
    values = BATCH.parse()
    outcome = loans_service.approve_many(runtime(), db_session(), auth.current(), values["loan_ids"],
                                         comment=values["comment"], ctx=access_context())
    return jsonify(approved=[loan.id for loan in outcome.approved],
                   refused=[{"id": loan_id, "code": decision.code, "error": str(decision.message)}
                            for loan_id, decision in outcome.refused])
