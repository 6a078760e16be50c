"""Departures for HR systems: give notice, move the last day, hand customers on, fetch the report,
withdraw, complete; and the handover's other people: the successor confirming contacts, an approver
waiving missing confirmations.

The same services and policy as the pages: administrators manage departures, administrators and
auditors read them and their reports; nobody manages or reports on their own departure; only the
person a customer was handed to confirms the contact, and approvers waive (never their own).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, jsonify
from flask_babel import lazy_gettext as _l

from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import Field, JsonBody, Query, parse_query
from vault.api.serializers import SCHEMAS, _object, _ref, timestamp, user_ref
from vault.api.spec import operation
from vault.core.actions import Action
from vault.core.dates import parse_day
from vault.core.errors import NotFound
from vault.models import Departure, HandoverItem, Loan, LoanStatus
from vault.policy import departures as departure_rules
from vault.policy import require
from vault.services import accounts
from vault.services import departures as service
from vault.services import report as report_service
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

_DATE = "A date, YYYY-MM-DD."
START = JsonBody(
    "DepartureStart",
    fields=(
        Field("person", "string", "The user name of the person who gave notice.", max_length=64),
        Field("last_day", "string", "The last working day (access ends at midnight after it). " + _DATE,
              max_length=10),
        Field("successor", "string", "The user name who receives the person's customers.", required=False,
              default=None, max_length=64, nullable=True),
        Field("notice_date", "string", "When notice was given (default: today). " + _DATE, required=False,
              default=None, max_length=10, nullable=True),
        Field("note", "string", "A note kept with the departure.", required=False, default="", max_length=2000),
    ),
)
WITHDRAW = JsonBody(
    "DepartureWithdraw",
    fields=(Field("reason", "string", "Why the notice is withdrawn (recorded).", max_length=2000),),
)
COMPLETE = JsonBody("DepartureComplete", fields=(), required=False, description="No body, or an empty object.")
UPDATE = JsonBody(
    "DepartureUpdate",
    fields=(
        Field("last_day", "string", "A new last working day (a day already past ends access at once and the "
              "last-day steps run). " + _DATE, required=False, default=None, max_length=10, nullable=True),
        Field("successor", "string", "The user name of a (new) successor: every customer not yet confirmed "
              "goes to them. A successor is replaced, never removed.", required=False, default=None,
              max_length=64, nullable=True),
        Field("note", "string", "The departure's note, replaced (an empty string clears it).", required=False,
              default=None, max_length=2000, nullable=True),
    ),
    description="At least one of the fields; those left out (or null) stay as they are.",
)
REASSIGN = JsonBody(
    "HandoverReassign",
    fields=(
        Field("to", "string", "The user name of the account manager who receives the customer.",
              required=False, default=None, max_length=64, nullable=True),
        Field("to_pool", "boolean", "true: the customer goes back to the shared pool, with no owner.",
              required=False, default=False),
    ),
    description="Exactly one of `to` and `to_pool: true`.",
)
CONFIRM = JsonBody(
    "HandoverConfirm",
    fields=(
        Field("contact_date", "string", "When the caller spoke to the customer (on or after the notice date, "
              "not in the future). " + _DATE, max_length=10),
        Field("note", "string", "What was said (recorded; at least 10 characters).", max_length=2000),
    ),
)
OVERRIDE = JsonBody(
    "DepartureOverride",
    fields=(Field("reason", "string", "Why the missing confirmations are waived (recorded; at least 10 "
                                      "characters).", max_length=2000),),
)
REPORT_QUERY = (
    Query("format", "string", "csv (default) or pdf.", choices=("csv", "pdf")),
    Query("days", "integer", "How far back the report looks, in days before the notice began (default: the "
          "policy's lookback_days); it runs to now."),
)


def departure_json(departure: Departure) -> dict[str, Any]:
    user = departure.user
    return {
        "id": departure.id,
        "person": user_ref(user),
        "status": str(departure.status),
        "notice_date": departure.notice_date.isoformat(),
        "last_day": user.last_day.isoformat() if user.last_day else None,
        "successor": user_ref(departure.successor),
        "started_at": timestamp(departure.started_at),
        "completed_at": timestamp(departure.completed_at),
        "customers": [{"item_id": item.id, "customer_id": item.customer_id, "to_user_id": item.to_user_id,
                       "key": item.key, "settled": item.settled, "moved": item.moved} for item in departure.items],
    }


def item_json(item: HandoverItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "departure_id": item.departure_id,
        "person": user_ref(item.departure.user),
        "customer": {"id": item.customer.id, "name": item.customer.name},
        "to_user": user_ref(item.to_user),
        "key": item.key,
        "key_reason": item.key_reason,
        "state": item.state,
        "settled": item.settled,
        "contact_date": item.contact_date.isoformat() if item.contact_date else None,
        "confirmed_at": timestamp(item.confirmed_at),
        "waived_at": timestamp(item.waived_at),
        "pooled_at": timestamp(item.pooled_at),
    }


def _date(name: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return parse_day(text)
    except ValueError:
        raise invalid({name: "must be a date, YYYY-MM-DD"}) from None


@bp.post("/departures")
@permission(Action.DEPARTURE_MANAGE)
@operation("Record a person's notice (for HR systems)", tag="departures", ok=201, response="Departure",
           body=START, errors=(404, 409),
           description="The person is on notice at once: stricter rules, customers handed to the successor, "
                       "an alert raised. A last day already past (a notice recorded late) ends the person's "
                       "access at once and the last-day steps run in the same request. 404 names an unknown "
                       "person or successor; 409 a person already on notice or gone; 403 `decider_departing` for "
                       "someone on notice who names a successor (handing customers over widens access).")
def start_departure() -> Any:
    values = START.parse()
    last_day = _date("last_day", values["last_day"])
    notice_date = _date("notice_date", values["notice_date"])
    session, actor = db_session(), auth.current()
    person = accounts.get_user(session, values["person"])
    successor = accounts.get_user(session, values["successor"]) if values["successor"] else None
    departure = service.start_departure(runtime(), session, actor, person, last_day=last_day,  # type: ignore[arg-type]
                                        successor=successor, notice_date=notice_date, note=values["note"],
                                        ctx=access_context())
    if person.past_last_day:
        # As on the page: a notice recorded after the last day ends access at once, and the last-day steps
        # run in the same unit of work.
        service.run_due(runtime(), session, ctx=access_context())
    return jsonify(departure_json(departure)), 201


LIST_QUERY = (Query("page", "integer", "Page number, from 1 (50 departures a page, open ones first)."),)


@bp.get("/departures")
@permission(Action.DEPARTURE_REPORT)
@operation("Every departure but the caller's own, open ones first", tag="departures", response="DepartureList",
           query=LIST_QUERY)
def list_departures() -> Any:
    params = parse_query(LIST_QUERY)
    found = service.page_of_departures(db_session(), auth.current(), page=params["page"] or 1)
    return jsonify(departures=[departure_json(d) for d in found.departures], total=found.total, page=found.page,
                   pages=found.pages)


def _visible(departure_id: int) -> Departure:
    departure = service.get_departure(db_session(), departure_id)
    require(auth.current(), Action.DEPARTURE_REPORT, departure.user, audit={"subject_user_id": departure.user_id})
    return departure


@bp.get(f"/departures/<{ID}:departure_id>")
@permission(Action.DEPARTURE_REPORT)
@operation("One departure with its handover", tag="departures", response="Departure")
def show_departure(departure_id: int) -> Any:
    departure = service.read_departure(runtime(), db_session(), auth.current(),
                                       service.get_departure(db_session(), departure_id), shown="json",
                                       ctx=access_context())
    return jsonify(departure_json(departure))


@bp.get(f"/departures/<{ID}:departure_id>/report")
@permission(Action.DEPARTURE_REPORT)
@operation("The departure report, as CSV or PDF (audited)", tag="departures", binary=True, query=REPORT_QUERY,
           binary_type="text/csv, application/pdf", errors=(400,))
def departure_report(departure_id: int) -> Any:
    params = parse_query(REPORT_QUERY)
    fmt = params["format"] or "csv"
    departure = _visible(departure_id)
    data = report_service.produce(runtime(), db_session(), auth.current(), departure.user, fmt=fmt,
                                  lookback_days=params["days"], ctx=access_context())
    content = report_service.csv_bytes(data) if fmt == "csv" else report_service.pdf_bytes(data)
    name = f"departure-report-{data.user.username}-{data.generated_at:%Y%m%d-%H%M}.{fmt}"
    return Response(content, mimetype="text/csv" if fmt == "csv" else "application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.post(f"/departures/<{ID}:departure_id>/withdraw")
@permission(Action.DEPARTURE_MANAGE)
@operation("Withdraw a notice: normal policy again for the person (audited)", tag="departures",
           response="Withdrawn", body=WITHDRAW,
           description="403 `already_offboarded` once the last day has passed; `departure_closed` when completed.")
def withdraw_departure(departure_id: int) -> Any:
    values = WITHDRAW.parse()
    session = db_session()
    departure = service.get_departure(session, departure_id)
    user = service.withdraw(runtime(), session, auth.current(), departure, reason=values["reason"],
                            ctx=access_context())
    return jsonify(id=departure_id, person=user_ref(user), status="withdrawn")


@bp.post(f"/departures/<{ID}:departure_id>/complete")
@permission(Action.DEPARTURE_MANAGE)
@operation("Complete a departure (every customer handed over and confirmed or waived)", tag="departures",
           response="Departure", body=COMPLETE)
def complete_departure(departure_id: int) -> Any:
    COMPLETE.parse()
    session = db_session()
    departure = service.get_departure(session, departure_id)
    service.complete(runtime(), session, auth.current(), departure, ctx=access_context())
    session.refresh(departure)
    return jsonify(departure_json(departure))


@bp.post(f"/departures/<{ID}:departure_id>")
@permission(Action.DEPARTURE_MANAGE)
@operation("Move the last day, name a (new) successor or change the note (audited)", tag="departures",
           response="Departure", body=UPDATE,
           description="Recorded as `departure:update` with what changed. A new successor receives every "
                       "customer not yet confirmed (each a `customer:handover`). A last day already past ends "
                       "the person's access at once and the last-day steps run in the same request. 403 "
                       "`departure_closed` once completed, `own_departure` for one's own, `decider_departing` for "
                       "someone on notice who names a successor or moves the last day; 404 names an unknown "
                       "departure or successor; 400 `invalid_successor` or `invalid_dates`.")
def update_departure(departure_id: int) -> Any:
    values = UPDATE.parse()
    if all(values[name] is None for name in ("last_day", "successor", "note")):
        raise invalid({"last_day": "or successor or note is required"},
                      _l("Give at least one of the last day, the successor and the note."))
    last_day = _date("last_day", values["last_day"])
    session, actor = db_session(), auth.current()
    departure = service.get_departure(session, departure_id)
    successor = accounts.get_user(session, values["successor"]) if values["successor"] else None
    service.update_departure(runtime(), session, actor, departure, last_day=last_day, successor=successor,
                             note=values["note"], ctx=access_context())
    if departure.user.past_last_day and departure.offboarded_at is None:
        # As on the page: access has just ended, so the last-day steps run in the same unit of work.
        service.run_due(runtime(), session, ctx=access_context())
    return jsonify(departure_json(departure))


def _item_of(departure: Departure, item_id: int) -> HandoverItem:
    """One handover item of this departure; another departure's item is as unknown as a missing one."""
    item = db_session().get(HandoverItem, item_id)
    if item is None or item.departure_id != departure.id:
        raise NotFound("handover item", subject_user_id=departure.user_id)
    return item


@bp.post(f"/departures/<{ID}:departure_id>/items/<{ID}:item_id>/reassign")
@permission(Action.DEPARTURE_MANAGE)
@operation("Hand one customer to another account manager, or return it to the shared pool (audited)",
           tag="departures", response="HandoverItem", body=REASSIGN, errors=(409,),
           description="`to`: recorded as `customer:handover`; the new owner confirms the contact afresh. "
                       "`to_pool`: recorded as `pool:return`; the customer has no owner until claimed or "
                       "assigned, and counts as handed over. 403 `departure_closed`, `own_departure`, or "
                       "`decider_departing` for someone on notice; 404 an "
                       "unknown departure, item (or one of another departure) or user name; 400 "
                       "`invalid_successor` for someone who cannot own customers; 409 `not_leavers` when the "
                       "customer has since been given to someone outside the handover (then only its present "
                       "owner may be named).")
def reassign_item(departure_id: int, item_id: int) -> Any:
    values = REASSIGN.parse()
    to_name, to_pool = values["to"], bool(values["to_pool"])
    if bool(to_name) == to_pool:
        problem = ({"to_pool": "cannot be true when `to` is given"} if to_pool
                   else {"to": "is required unless `to_pool` is true"})
        raise invalid(problem, _l("Name exactly one: who receives the customer (to) or the shared pool "
                                  "(to_pool: true)."))
    session, actor = db_session(), auth.current()
    departure = service.get_departure(session, departure_id)
    item = _item_of(departure, item_id)
    if to_pool:
        service.return_to_pool(runtime(), session, actor, item, ctx=access_context())
    else:
        to_user = accounts.get_user(session, to_name)
        service.reassign(runtime(), session, actor, item, to_user, ctx=access_context())
    return jsonify(item_json(item))


@bp.post(f"/departures/<{ID}:departure_id>/override")
@permission(Action.DEPARTURE_OVERRIDE)
@operation("Waive the confirmation of every unconfirmed key customer, with a reason (approvers; audited)",
           tag="departures", response="Departure", body=OVERRIDE,
           description="Recorded as `departure:override` with the items waived. 403 `own_departure`, "
                       "`separation_of_duties` (confirmations that are the caller's own to give), "
                       "`departure_closed`, `nothing_to_override`, or a reason too short.")
def override_departure(departure_id: int) -> Any:
    values = OVERRIDE.parse()
    session = db_session()
    departure = service.get_departure(session, departure_id)
    service.override(runtime(), session, auth.current(), departure, reason=values["reason"], ctx=access_context())
    return jsonify(departure_json(departure))


@bp.get("/handover")
@permission(Action.HANDOVER_CONFIRM)
@operation("The customers handed to the caller whose contact is theirs to confirm", tag="departures",
           response="HandoverItemList",
           description="Approvers also see the departures whose missing confirmations they may waive. "
                       "Recorded as `customer:list` (listing `handover`, with the ids of every customer named) "
                       "when the answer names any.")
def my_handover() -> Any:
    handover = service.read_handover(runtime(), db_session(), auth.current(), name_waivable=True,
                                     ctx=access_context())
    return jsonify(items=[item_json(item) for item in handover.items],
                   awaiting_override=[{"departure_id": d.id, "person": user_ref(d.user),
                                       "items": [item_json(item) for item in departure_rules.waivable(d)]}
                                      for d in handover.awaiting])


@bp.post(f"/handover/items/<{ID}:item_id>/confirm")
@permission(Action.HANDOVER_CONFIRM)
@operation("Confirm the first contact with a customer handed to the caller (audited)", tag="departures",
           response="HandoverItem", body=CONFIRM,
           description="Recorded as `handover:confirm`. A key customer needs the caller's logged contact with "
                       "its main contact since the notice first (`POST /customers/{id}/log`). 403 "
                       "`not_successor` (another person's item), `own_departure`, `successor_departing`, "
                       "`already_confirmed`, `not_transferred`, `departure_closed`, `contact_not_logged`, "
                       "`contact_date_future`, `contact_before_notice`, or a note too short.")
def confirm_handover(item_id: int) -> Any:
    values = CONFIRM.parse()
    contact_date = _date("contact_date", values["contact_date"])
    session = db_session()
    item = service.get_item(session, item_id)
    service.confirm_contact(runtime(), session, auth.current(), item, contact_date=contact_date,
                            note=values["note"], ctx=access_context())
    return jsonify(item_json(item))


# -- custodians and approvers: the open loans of people on notice --------------------------------------------

SCHEMAS["LeaverLoan"] = _object({
    "id": {"type": "integer", "minimum": 1},
    "status": {"type": "string", "enum": [str(s) for s in LoanStatus]},
    "borrower": _ref("UserRef"),
    "last_day": {"type": ["string", "null"], "format": "date"},
    "document": _object({"id": {"type": "integer", "minimum": 1}, "title": {"type": "string"},
                         "grade": {"type": "integer", "enum": [1, 2, 3]},
                         "customer": _object({"id": {"type": "integer", "minimum": 1}, "name": {"type": "string"}})}),
    "due_at": {"type": ["string", "null"], "format": "date-time"},
    "revocable": {"type": "boolean", "description": "The caller may revoke it now (`POST /loans/{id}/revoke`)."},
}, "An open loan (requested, approved or active) of someone on notice.")
SCHEMAS["LeaverLoanList"] = _object({
    "loans": {"type": "array", "items": _ref("LeaverLoan"), "description": "By borrower's user name, then loan."},
    "reason": {"type": "string", "description": "The reason the leavers' page offers for revoking one."},
})


def leaver_loan_json(loan: Loan, revocable: set[int]) -> dict[str, Any]:
    document, borrower = loan.document, loan.borrower
    return {
        "id": loan.id,
        "status": str(loan.status),
        "borrower": user_ref(borrower),
        "last_day": borrower.last_day.isoformat() if borrower.last_day else None,
        "document": {"id": document.id, "title": document.title, "grade": document.grade,
                     "customer": {"id": document.customer.id, "name": document.customer.name}},
        "due_at": timestamp(loan.due_at),
        "revocable": loan.id in revocable,
    }


@bp.get("/departures/loans")
@permission(Action.LOAN_REVOKE)
@operation("The open loans of everyone on notice (custodians and approvers)", tag="departures",
           response="LeaverLoanList",
           description="What the leavers' page lists, so what a person no longer needs can be revoked "
                       "(`POST /loans/{id}/revoke` with a reason) before the last day: to approvers every open "
                       "loan (a requested one waits for them), to custodians the approved and active ones.")
def leavers_loans() -> Any:
    session, actor = db_session(), auth.current()
    loans = service.leavers_open_loans(runtime(), session, actor, ctx=access_context())
    revocable = service.revocable_by(actor, loans)
    return jsonify(loans=[leaver_loan_json(loan, revocable) for loan in loans],
                   reason=service.LEAVER_REVOKE_REASON)
