"""Rotation of account managers over the API: the open proposals the caller may decide, approving one
(perhaps naming another member of the team), skipping one with a reason, and running the plan.

The same services and policy as the rotation page: deciders are the current owner's managers (up the
chain) and approvers, never the person who would gain the customer nor the owner losing it.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import Field, JsonBody, Query, parse_query
from vault.api.serializers import SCHEMAS, _object, _ref, timestamp, user_ref
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import ProposalStatus, RotationProposal, Segment
from vault.services import rotation as service
from vault.services.accounts import find_user
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

APPROVE = JsonBody(
    "RotationApprove",
    fields=(
        Field("to", "string", "The user name of another member of the team to receive the customer instead of "
                              "the one proposed.", required=False, default=None, max_length=64, nullable=True),
        Field("reason", "string", "A note kept with the decision.", required=False, default="", max_length=2000),
    ),
    required=False,
    description="No body, or an object; without `to` the proposed owner receives the customer.",
)
SKIP = JsonBody("RotationSkip", fields=(
    Field("reason", "string", "Why the customer stays with its owner (recorded; at least 5 characters).",
          max_length=2000),))
PROPOSE = JsonBody("RotationPropose", fields=(), required=False, description="No body, or an empty object.")
LIST_QUERY = (Query("page", "integer", "Page number, from 1 (50 proposals a page, longest tenure first)."),)

_ID = {"type": "integer", "minimum": 1}
_TS_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
SCHEMAS["RotationProposal"] = _object({
    "id": _ID,
    "status": {"type": "string", "enum": [str(s) for s in ProposalStatus]},
    "customer": _object({"id": _ID, "name": {"type": "string"},
                         "segment": {"type": "string", "enum": [str(s) for s in Segment]}}),
    "current_owner": _ref("UserRef"),
    "proposed_owner": _ref("UserRef"),
    "new_owner": _ref("UserRef"),
    "owner_since": _TS_OR_NULL,
    "created_at": {"type": "string", "format": "date-time"},
    "decided_at": _TS_OR_NULL,
    "reason": {"type": ["string", "null"]},
}, "A proposed change of account manager. `current_owner` held the customer when it was proposed; "
   "`new_owner` is who receives it (the proposed one unless a manager named another).")
SCHEMAS["RotationProposalList"] = _object({
    "proposals": {"type": "array", "items": _ref("RotationProposal"), "maxItems": 50},
    "total": {"type": "integer", "minimum": 0, "description": "Open proposals the caller may decide, on all pages."},
    "page": {"type": "integer", "minimum": 1},
    "pages": {"type": "integer", "minimum": 1},
})
SCHEMAS["RotationProposed"] = _object({
    "proposed": {"type": "array", "items": _ref("RotationProposal"),
                 "description": "The proposals made by this run (those the caller may decide are listed by "
                                "GET /rotations)."},
})


def proposal_json(proposal: RotationProposal) -> dict[str, Any]:
    customer = proposal.customer
    return {
        "id": proposal.id,
        "status": str(proposal.status),
        "customer": {"id": customer.id, "name": customer.name, "segment": str(customer.segment)},
        "current_owner": user_ref(proposal.from_user),
        "proposed_owner": user_ref(proposal.proposed_user),
        "new_owner": user_ref(proposal.to_user),
        "owner_since": timestamp(proposal.owner_since),
        "created_at": timestamp(proposal.created_at),
        "decided_at": timestamp(proposal.decided_at),
        "reason": proposal.reason,
    }


@bp.get("/rotations")
@permission(Action.ROTATION_DECIDE)
@operation("Open rotation proposals the caller may decide", tag="rotations", response="RotationProposalList",
           query=LIST_QUERY,
           description="Proposals for customers whose owner is below the caller in the chain of managers (every "
                       "one for an approver), except those that would give the caller a customer or take one "
                       "from them. 403 `rotation_departing` (recorded): the caller is on notice, and nobody on "
                       "notice decides, or is listed, a rotation.")
def list_rotations() -> Any:
    params = parse_query(LIST_QUERY)
    found = service.page_for(runtime(), db_session(), auth.current(), page=params["page"] or 1, ctx=access_context())
    return jsonify(proposals=[proposal_json(p) for p in found.proposals], total=found.total, page=found.page,
                   pages=found.pages)


@bp.post("/rotations/propose")
@permission(Action.ROTATION_DECIDE)
@operation("Run the rotation plan (idempotent)", tag="rotations", response="RotationProposed", body=PROPOSE,
           description="Proposes a new owner for every customer due under the policy file's [rotation] section "
                       "that has no open proposal; voids open proposals the owner has since changed for. 403 "
                       "`rotation_departing` (the caller is on notice).")
def propose_rotations() -> Any:
    PROPOSE.parse()
    made = service.propose(runtime(), db_session(), auth.current(), ctx=access_context())
    return jsonify(proposed=[proposal_json(p) for p in made])


@bp.post(f"/rotations/<{ID}:proposal_id>/approve")
@permission(Action.ROTATION_DECIDE)
@operation("Approve a rotation proposal, perhaps naming another owner (audited)", tag="rotations",
           response="RotationProposal", body=APPROVE, errors=(409,),
           description="Ownership moves; the previous owner's open loans on the customer's files end; the new owner "
                       "has a contact to confirm. 403 `own_gain`, `own_rotation`, `not_owners_manager`, "
                       "`rotation_departing` (the caller is on notice); 409 "
                       "`already_decided`, `owner_changed`; 400 `invalid_owner`, `not_in_team`.")
def approve_rotation(proposal_id: int) -> Any:
    values = APPROVE.parse()
    session, actor = db_session(), auth.current()
    proposal = service.get_for_decision(session, actor, proposal_id)
    to_user = None
    if values["to"]:
        to_user = find_user(session, values["to"].strip())
        if to_user is None:
            raise invalid({"to": "is not a known user name"})
    service.approve(runtime(), session, actor, proposal, to_user=to_user, reason=values["reason"],
                    ctx=access_context())
    return jsonify(proposal_json(proposal))


@bp.post(f"/rotations/<{ID}:proposal_id>/skip")
@permission(Action.ROTATION_DECIDE)
@operation("Skip a rotation proposal: the customer stays with its owner (audited)", tag="rotations",
           response="RotationProposal", body=SKIP, errors=(409,),
           description="The plan proposes the customer again after another interval. 400 `reason_required`; "
                       "403 `rotation_departing` (the caller is on notice).")
def skip_rotation(proposal_id: int) -> Any:
    values = SKIP.parse()
    session, actor = db_session(), auth.current()
    proposal = service.get_for_decision(session, actor, proposal_id)
    service.skip(runtime(), session, actor, proposal, reason=values["reason"], ctx=access_context())
    return jsonify(proposal_json(proposal))


# -- the new owner's side: customers rotated to the caller, whose contact is theirs to confirm ----------------

CONFIRM = JsonBody(
    "RotationConfirm",
    fields=(Field("note", "string", "What was said (recorded).", required=False, default="", max_length=2000),),
    required=False,
    description="No body, or an object with an optional note.",
)
SCHEMAS["RotationTask"] = _object({
    "id": _ID,
    "customer": _object({"id": _ID, "name": {"type": "string"},
                         "segment": {"type": "string", "enum": [str(s) for s in Segment]}}),
    "previous_owner": _ref("UserRef"),
    "decided_at": _TS_OR_NULL,
    "confirmed_at": _TS_OR_NULL,
    "note": {"type": ["string", "null"], "description": "The note given with the confirmation."},
}, "A customer rotated to the caller (`id` is the approved proposal's): reach its main contact, log the contact "
   "(`POST /customers/{id}/log`), then confirm it.")
SCHEMAS["RotationTaskList"] = _object({
    "tasks": {"type": "array", "items": _ref("RotationTask"),
              "description": "Customers rotated to the caller, still theirs and not yet confirmed, oldest first."},
})


def task_json(proposal: RotationProposal) -> dict[str, Any]:
    customer = proposal.customer
    return {
        "id": proposal.id,
        "customer": {"id": customer.id, "name": customer.name, "segment": str(customer.segment)},
        "previous_owner": user_ref(proposal.from_user),
        "decided_at": timestamp(proposal.decided_at),
        "confirmed_at": timestamp(proposal.confirmed_at),
        "note": proposal.confirmation_note,
    }


@bp.get("/rotations/tasks")
@permission(Action.ROTATION_CONFIRM)
@operation("The customers rotated to the caller whose contact is theirs to confirm", tag="rotations",
           response="RotationTaskList",
           description="Recorded as `customer:list` (listing `rotation_tasks`, with the customers' ids) when "
                       "the list names any.")
def rotation_tasks() -> Any:
    return jsonify(tasks=[task_json(p) for p in service.read_tasks(runtime(), db_session(), auth.current(),
                                                                    ctx=access_context())])


@bp.post(f"/rotations/<{ID}:proposal_id>/confirm")
@permission(Action.ROTATION_CONFIRM)
@operation("Confirm having reached a customer rotated to the caller (audited)", tag="rotations",
           response="RotationTask", body=CONFIRM,
           description="Recorded as `rotation:confirm`. The contact with the customer's main contact must be "
                       "logged first (`POST /customers/{id}/log`, since the approval). 404 for a proposal that "
                       "did not give the customer to the caller; 403 `no_longer_owner`, `already_confirmed`, "
                       "`contact_not_logged`.")
def confirm_rotation(proposal_id: int) -> Any:
    values = CONFIRM.parse()
    session, actor = db_session(), auth.current()
    proposal = service.get_task(session, actor, proposal_id)
    service.confirm_contact(runtime(), session, actor, proposal, note=values["note"], ctx=access_context())
    return jsonify(task_json(proposal))
