"""Loans: requesting one, the approver's and custodian's queues and decisions, returning and revoking.

Each act answers with the loan as it now stands. A loan the caller may not see is "not found" (404),
whatever its id, so ids cannot be used to probe other people's loans. The queues and a loan's decision
context are the pages' own (`services.loan_context`): a program sees what an approver or custodian sees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, jsonify
from sqlalchemy.orm import Session

from vault import policy
from vault.api import serializers
from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import MAX_ID, BelongsTo, Field, JsonBody, Query, parse_query
from vault.api.spec import operation
from vault.core.actions import Action
from vault.core.context import AccessContext
from vault.models import Category, Loan, LoanKind, LoanStatus, User
from vault.policy.loans import MAX_EXTRA_VIEWS
from vault.runtime import Runtime
from vault.services import accounts, loan_context
from vault.services import documents as documents_service
from vault.services import loans as loans_service
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

REQUEST = JsonBody(
    "LoanRequest",
    fields=(
        Field("document_id", "integer", "The document to borrow.", minimum=1, maximum=MAX_ID),
        Field("reason", "string", "Why the document is needed (recorded and shown to the approver; at least 10 "
              "characters, in words: else 403 `reason_too_short`, `reason_not_meaningful` or "
              "`reason_copies_category`).", max_length=2000, judged=True),
        Field("category", "string", "The kind of need (another value, or none: 403 `invalid_category`).",
              choices=tuple(str(c) for c in Category), judged=True),
        Field("place", "string", "Where the document will be read (empty or blank: 403 `place_required`).",
              max_length=200, judged=True),
        Field("days", "integer", "How long the loan should last: below 1 is 403 `days_invalid`, beyond the "
              "grade's longest loan 403 `days_too_long`. A loan's only: an extension adds views, not time, so "
              "days sent with one are refused (422).", minimum=1, maximum=3650, judged=True,
              belongs_to=BelongsTo("kind", str(LoanKind.LOAN), required="is required for a loan",
                                   elsewhere="is not for an extension, which adds views, not days")),
        Field("kind", "string", "`extension` asks for more views on a document whose quota is spent (with "
              "`extra_views`, without `days`).",
              required=False, default=str(LoanKind.LOAN), choices=tuple(str(k) for k in LoanKind)),
        Field("extra_views", "integer", f"For an extension: how many more views (from 1 to {MAX_EXTRA_VIEWS}, "
              "else 403 `extra_views_invalid`). An extension's only: a loan gives days and the grade's views, so "
              "extra views sent with one are refused (422).", minimum=1, maximum=MAX_EXTRA_VIEWS, judged=True,
              belongs_to=BelongsTo("kind", str(LoanKind.EXTENSION), required="is required for an extension",
                                   elsewhere="is not for a loan, which gives days, not extra views")),
    ),
)
DECISION = JsonBody(
    "LoanDecision",
    fields=(Field("comment", "string", "The approver's comment, kept with the decision.", required=False,
                  default="", max_length=2000),),
    required=False,
)
REVOKE = JsonBody(
    "LoanRevoke",
    fields=(Field("reason", "string", "Why the loan is ended early (recorded).", max_length=2000),),
)
DESIGNATE = JsonBody(
    "LoanDesignate",
    fields=(
        Field("custodian", "string", "The user name of the custodian who may release this loan.", max_length=64),
        Field("reason", "string", "Why the file's own custodian does not release it (recorded).",
              max_length=2000),
    ),
)
NO_BODY = JsonBody("Empty", fields=(), required=False, description="No body, or an empty JSON object.")
# A work queue: what its page lists, under the page's permission, in the page's order.
QUEUES: dict[str, tuple[Action, Callable[[Session, User, int], loans_service.LoanPage]]] = {
    "approvals": (Action.LOAN_APPROVE, loan_context.approval_queue),
    "custody": (Action.LOAN_RELEASE, loan_context.release_queue),
    "custody_active": (Action.LOAN_RELEASE, loan_context.active_loans),
}
LIST_QUERY = (
    Query("mine", "boolean", "1: only the caller's own loans (as borrower)."),
    Query("status", "string", "Only loans in this state.", choices=tuple(str(s) for s in LoanStatus)),
    Query("queue", "string", "A work queue, exactly as its page lists it for the caller (not with `mine` or "
          "`status`): `approvals` (approvers: requests waiting for a decision, never the caller's own, oldest "
          "first), `custody` (custodians: approved loans waiting for their release, oldest first), "
          "`custody_active` (custodians: active loans, the one due first on top).", choices=tuple(QUEUES)),
    Query("page", "integer", "Page number, from 1 (50 loans a page, newest first; a queue in its own order)."),
)


@bp.post("/loans")
@permission(Action.LOAN_REQUEST)
@operation("Request a loan of a document", tag="loans", ok=201, response="LoanCreated", body=REQUEST,
           errors=(404,),
           description="The policy refuses (403) with its reason code: no loan needed at this grade, an open "
                       "request already, a reason too short, too many days, and so on.")
def request_loan() -> Any:
    values = REQUEST.parse()
    session, actor = db_session(), auth.current()
    document = documents_service.get_document(session, actor, values["document_id"])
    # As on the pages: a refused request is recorded with the place the caller declared.
    g.access_context = access_context().declaring(values["place"].strip())
    extension = values["kind"] == LoanKind.EXTENSION
    loan = loans_service.request_loan(
        runtime(), session, actor, document, reason=values["reason"], category=values["category"],
        place=values["place"], days=0 if extension else values["days"], ctx=access_context(), kind=values["kind"],
        extra_views=values["extra_views"] if extension else 0,
    )
    return jsonify(id=loan.id, status=str(loan.status)), 201


@bp.get("/loans")
@permission(Action.LOAN_READ)
@operation("Loans the caller may see, or one of the work queues", tag="loans", response="LoanList", query=LIST_QUERY,
           description="A queue needs its page's permission: `approvals` an approver's (403 `not_permitted`, "
                       "recorded as `loan:approve`), `custody` and `custody_active` a custodian's (recorded as "
                       "`loan:release`). 422 for a queue with `mine` or `status`. A page that shows other "
                       "people's loans is recorded as `loan:queue`, with their ids.")
def list_loans() -> Any:
    params = parse_query(LIST_QUERY)
    session, actor, page = db_session(), auth.current(), params["page"] or 1
    if params["queue"] is not None:
        clash = {name: "cannot be combined with queue" for name in ("mine", "status") if params[name]}
        if clash:
            raise invalid(clash)
        action, queue = QUEUES[params["queue"]]
        g.vault_denied_action = str(action)  # refused as its page refuses it
        policy.require(actor, action)
        g.pop("vault_denied_action", None)
        found = queue(session, actor, page)
    else:
        found = loans_service.page_of_loans(session, actor, mine=params["mine"], status=params["status"], page=page)
    loans_service.record_listing(runtime(), session, actor, found, listing=params["queue"] or "list",
                                 ctx=access_context())
    return jsonify(loans=[serializers.loan(loan) for loan in found.loans], total=found.total, page=found.page,
                   pages=found.pages)


@bp.get(f"/loans/<{ID}:loan_id>")
@permission(Action.LOAN_READ)
@operation("One loan", tag="loans", response="Loan",
           description="Someone else's loan is recorded as `loan:read` (it names a customer and a file); any "
                       "loan the caller does not see is an audited 404.")
def show_loan(loan_id: int) -> Any:
    return jsonify(serializers.loan(loans_service.read_loan(runtime(), db_session(), auth.current(), loan_id,
                                                            ctx=access_context())))


@bp.get(f"/loans/<{ID}:loan_id>/context")
@permission(Action.LOAN_READ)
@operation("What the caller decides this loan on", tag="loans", response="LoanContext",
           description="As the loan page shows it: what the loan will allow, the borrower's history (overall and "
                       "with this customer), a trusted-place warning, and for each act whether it is open to the "
                       "caller now or the policy's reason code why not. The same loans as `GET /loans/{id}`: "
                       "any other id is an audited 404. Someone else's loan is recorded as `loan:read`.")
def show_loan_context(loan_id: int) -> Any:
    session, actor = db_session(), auth.current()
    loan = loans_service.get_loan(session, actor, loan_id)
    return jsonify(serializers.loan_context(loan, loan_context.read_decision_context(runtime(), session, actor, loan,
                                                                                     ctx=access_context())))


@bp.post(f"/loans/<{ID}:loan_id>/approve")
@permission(Action.LOAN_APPROVE)
@operation("Approve a requested loan", tag="loans", response="Loan", body=DECISION)
def approve_loan(loan_id: int) -> Any:
    values = DECISION.parse()
    return _act(loan_id, lambda rt, session, actor, loan, ctx: loans_service.approve(
        rt, session, actor, loan, comment=values["comment"], ctx=ctx))


@bp.post(f"/loans/<{ID}:loan_id>/reject")
@permission(Action.LOAN_REJECT)
@operation("Reject a requested loan", tag="loans", response="Loan", body=DECISION)
def reject_loan(loan_id: int) -> Any:
    values = DECISION.parse()
    return _act(loan_id, lambda rt, session, actor, loan, ctx: loans_service.reject(
        rt, session, actor, loan, comment=values["comment"], ctx=ctx))


@bp.post(f"/loans/<{ID}:loan_id>/release")
@permission(Action.LOAN_RELEASE)
@operation("Release an approved loan (custodian, where the grade requires it)", tag="loans", response="Loan",
           body=NO_BODY)
def release_loan(loan_id: int) -> Any:
    NO_BODY.parse()
    return _act(loan_id, lambda rt, session, actor, loan, ctx: loans_service.release(
        rt, session, actor, loan, ctx=ctx))


@bp.post(f"/loans/<{ID}:loan_id>/designate")
@permission(Action.LOAN_DESIGNATE)
@operation("Name the custodian who releases this loan while the file's custodian is away (approvers)",
           tag="loans", response="Loan", body=DESIGNATE, errors=(404,))
def designate_custodian(loan_id: int) -> Any:
    values = DESIGNATE.parse()
    custodian = accounts.find_user(db_session(), values["custodian"])
    return _act(loan_id, lambda rt, session, actor, loan, ctx: loans_service.designate_custodian(
        rt, session, actor, loan, custodian, reason=values["reason"], ctx=ctx))


@bp.post(f"/loans/<{ID}:loan_id>/return")
@permission(Action.LOAN_RETURN)
@operation("Return a loan", tag="loans", response="Loan", body=NO_BODY)
def return_loan(loan_id: int) -> Any:
    NO_BODY.parse()
    return _act(loan_id, lambda rt, session, actor, loan, ctx: loans_service.return_loan(
        rt, session, actor, loan, ctx=ctx))


@bp.post(f"/loans/<{ID}:loan_id>/revoke")
@permission(Action.LOAN_REVOKE)
@operation("Revoke a loan", tag="loans", response="Loan", body=REVOKE)
def revoke_loan(loan_id: int) -> Any:
    values = REVOKE.parse()
    return _act(loan_id, lambda rt, session, actor, loan, ctx: loans_service.revoke(
        rt, session, actor, loan, reason=values["reason"], ctx=ctx))


@bp.post(f"/loans/<{ID}:loan_id>/withdraw")
@permission(Action.LOAN_WITHDRAW)
@operation("Withdraw one's own request while nobody has approved it", tag="loans", response="Loan", body=NO_BODY,
           description="Only the borrower, and only while the request waits with no approval yet; otherwise "
                       "403 with `not_your_request`, `already_decided_withdraw` or `invalid_state`.")
def withdraw_loan(loan_id: int) -> Any:
    NO_BODY.parse()
    return _act(loan_id, lambda rt, session, actor, loan, ctx: loans_service.withdraw(
        rt, session, actor, loan, ctx=ctx))


def _act(loan_id: int, act: Callable[[Runtime, Session, User, Loan, AccessContext], object]) -> Any:
    """Load the loan as the caller may see it, do the act, commit, answer with the loan."""
    session, actor = db_session(), auth.current()
    loan = loans_service.get_loan(session, actor, loan_id)
    act(runtime(), session, actor, loan, access_context())
    session.refresh(loan)
    return jsonify(serializers.loan(loan))
