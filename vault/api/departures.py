"""Departures for HR systems: give notice, follow the handover, fetch the report, withdraw, complete.

The same services and policy as the pages: administrators manage departures, administrators and
auditors read them and their reports; nobody manages or reports on their own departure.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, jsonify

from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import Field, JsonBody, Query, parse_query
from vault.api.serializers import timestamp, user_ref
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import Departure
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
REPORT_QUERY = (
    Query("format", "string", "csv (default) or pdf.", choices=("csv", "pdf")),
    Query("days", "integer", "How far back the report looks, in days (default: the policy's lookback_days)."),
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
        "customers": [{"customer_id": item.customer_id, "to_user_id": item.to_user_id, "key": item.key,
                       "settled": item.settled} for item in departure.items],
    }


def _date(name: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise invalid({name: "must be a date, YYYY-MM-DD"}) from None


@bp.post("/departures")
@permission(Action.DEPARTURE_MANAGE)
@operation("Record a person's notice (for HR systems)", tag="departures", ok=201, response="Departure",
           body=START, errors=(404, 409),
           description="The person is on notice at once: stricter rules, customers handed to the successor, "
                       "an alert raised. 404 names an unknown person or successor; 409 a person already on "
                       "notice or gone.")
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
    return jsonify(departure_json(_visible(departure_id)))


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
