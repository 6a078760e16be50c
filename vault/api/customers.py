"""Customers: the ones the caller works (with search), the look-up for any other, creation by compilers, one
customer with its documents, and who works it. Every read is audited; a customer the caller does not see is
a 404 like a missing one."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault.api import record_serializers, serializers
from vault.api.blueprint import ID, bp
from vault.api.errors import error_response, invalid
from vault.api.inputs import Field, JsonBody, Query, parse_query
from vault.api.letters import letters_json
from vault.api.records import customer_of
from vault.api.serializers import SCHEMAS, _object, _ref
from vault.api.spec import operation
from vault.core.actions import Action
from vault.core.errors import ServiceError
from vault.models import Segment
from vault.services import customers as customers_service
from vault.services import documents as documents_service
from vault.services import records as records_service
from vault.services import upkeep
from vault.services.accounts import find_user
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

LIST_QUERY = (
    Query("q", "string", "Only customers whose name contains this text (accents and case ignored)."),
    Query("mine", "boolean", "1: only the customers the caller owns or co-owns."),
    Query("page", "integer", "Page number, from 1 (50 customers a page)."),
)
LOOKUP_QUERY = (
    Query("q", "string", "At least 4 letters of the customer's name (accents and case ignored)."),
)
OWNER = JsonBody(
    "CustomerOwner",
    fields=(
        Field("owner", "string", "User name of the new account manager.", max_length=64),
        Field("reason", "string", "Why (recorded).", required=False, default="", max_length=2000),
    ),
)
CO_OWNER = JsonBody(
    "CustomerCoOwner",
    fields=(Field("user", "string", "User name of the co-owner.", max_length=64),),
)
CREATE = JsonBody(
    "CustomerCreate",
    fields=(
        Field("name", "string", "The customer's name (unique, case-insensitive).", max_length=200),
        Field("segment", "string", "vip, key or ordinary.", choices=tuple(str(s) for s in Segment)),
        Field("owner", "string", "User name of the account manager; the caller when left out.",
              required=False, nullable=True, max_length=64),
        Field("pool", "boolean", "true: a new lead for the shared pool, with no owner (leave `owner` out).",
              required=False, default=False),
        Field("notes", "string", "Notes on the relationship: sealed into the customer's record as its first "
              "version, shown masked as `record.notes` (`POST …/reveal` shows them).", required=False, default="",
              max_length=4000),
    ),
)


@bp.get("/customers")
@permission(Action.CUSTOMER_READ)
@operation("Customers the caller works, by name", tag="customers", response="CustomerList", query=LIST_QUERY,
           description="Owned or co-owned, the caller's team's (down the chain of managers; not while the caller is "
                       "on notice, when the team's customers are reached by a look-up only), those whose files the "
                       "caller holds or handles, and those looked up within the day. Recorded as `customer:list` "
                       "with the ids returned.")
def list_customers() -> Any:
    params = parse_query(LIST_QUERY)
    found = customers_service.list_customers(runtime(), db_session(), auth.current(), query=params["q"] or "",
                                             page=params["page"] or 1, mine=params["mine"], ctx=access_context())
    return jsonify(customers=[serializers.customer(c) for c in found.customers], total=found.total,
                   page=found.page, pages=found.pages)


@bp.post("/customers")
@permission(Action.CUSTOMER_CREATE)
@operation("Create a customer", tag="customers", ok=201, response="Customer", body=CREATE, errors=(409,))
def create_customer() -> Any:
    values = CREATE.parse()
    session = db_session()
    owner = None
    if values["owner"]:
        owner = find_user(session, values["owner"].strip())
        if owner is None:
            raise invalid({"owner": "is not a known user name"})
    customer = customers_service.create_customer(
        runtime(), session, auth.current(), name=values["name"], segment=values["segment"], owner=owner,
        notes=values["notes"], to_pool=bool(values["pool"]), ctx=access_context(),
    )
    return jsonify(serializers.customer(customer)), 201


@bp.get(f"/customers/<{ID}:customer_id>")
@permission(Action.CUSTOMER_READ)
@operation("A customer with its record (masked) and the metadata of the documents the caller may see",
           tag="customers", response="CustomerDetail", errors=(409,),
           description="Contacts, terms, notes and the contact log are masked; `POST …/reveal` shows them. "
                       "`letters`: the letters telling its contacts about a new account manager, as on its page. "
                       "`currency`: whether the record is kept current, as the page's Kept current line "
                       "shows it (due by, or overdue by so many days; completeness).")
def show_customer(customer_id: int) -> Any:
    session, actor = db_session(), auth.current()
    customer = customer_of(customer_id)
    documents = documents_service.customer_documents(session, actor, customer)
    record = records_service.masked_view(runtime(), session, customer)
    return jsonify({**serializers.customer_detail(customer, documents), "record": record_serializers.record(record),
                    "letters": letters_json(customer.id, actor),
                    "currency": currency_json(upkeep.record_state(runtime(), session, customer))})


def currency_json(state: upkeep.RecordState) -> dict[str, Any]:
    """What the customer page shows of the record's upkeep, no more: the figures, never contact data."""
    return {"due_on": state.due_on.isoformat(), "overdue": state.overdue, "overdue_days": state.overdue_days,
            "completeness": state.completeness}


SCHEMAS["RecordCurrency"] = _object({
    "due_on": {"type": "string", "format": "date",
               "description": "The record is current until this day (its segment's cadence from the last edit or "
                              "confirmation, or from the customer's creation)."},
    "overdue": {"type": "boolean"},
    "overdue_days": {"type": "integer", "minimum": 0, "description": "Days past `due_on`; 0 when not overdue."},
    "completeness": {"type": "integer", "minimum": 0, "maximum": 100,
                     "description": "The completeness score: required facts, reachable contacts, recent contact."},
}, "Whether the customer's record is kept current, as its page shows it.")
SCHEMAS["CustomerDetail"]["properties"]["currency"] = _ref("RecordCurrency")
SCHEMAS["CustomerDetail"]["required"] = [*SCHEMAS["CustomerDetail"]["required"], "currency"]


@bp.get("/customers/lookup")
@permission(Action.CUSTOMER_LOOKUP)
@operation("Look up a customer the caller does not work", tag="customers", response="CustomerLookup",
           query=LOOKUP_QUERY, errors=(400,),
           description="At most 5 names for at least 4 letters; recorded as `customer:lookup` with the query and "
                       "the ids returned. Each customer found stays visible to the caller for a day. Every query "
                       "run, found or not, spends one of the caller's look-ups of the day (`[lookups]`, fewer on "
                       "notice); none left: 403 `lookup_cap_reached`, recorded. A query too short (400 "
                       "`query_too_short`) costs nothing, and its answer carries `remaining_today` and `daily_cap` "
                       "as a success does.")
def lookup_customer() -> Any:
    params = parse_query(LOOKUP_QUERY)
    session, actor = db_session(), auth.current()
    try:
        found = customers_service.lookup(runtime(), session, actor, params["q"] or "", ctx=access_context())
    except ServiceError as exc:
        # A slip spent nothing: say what is left, as the page does beside the field, so the client knows
        # where it stands before it tries again.
        left = customers_service.lookups_left(runtime(), session, actor)
        return error_response(exc.status, exc.code, exc.message, remaining_today=left.remaining, daily_cap=left.cap)
    left = customers_service.lookups_left(runtime(), session, actor)
    return jsonify(customers=[serializers.customer(c) for c in found], remaining_today=left.remaining,
                   daily_cap=left.cap)


def _person(session: Any, username: str, field: str) -> Any:
    person = find_user(session, username.strip())
    if person is None:
        raise invalid({field: "is not a known user name"})
    return person


@bp.post(f"/customers/<{ID}:customer_id>/owner")
@permission(Action.CUSTOMER_ASSIGN)
@operation("Give the customer to another account manager", tag="customers", response="Customer", body=OWNER,
           description="The owner's manager (anywhere up the chain) or an approver; never the person gaining it "
                       "(403 `own_gain`), nor someone below the caller when the caller does not see the customer "
                       "(403 `own_reach`: they would see it through that person); never by someone on notice "
                       "(403 `decider_departing`).")
def change_owner(customer_id: int) -> Any:
    values = OWNER.parse()
    session, actor = db_session(), auth.current()
    customer = customers_service.get_for_assignment(session, actor, customer_id)
    customers_service.set_owner(runtime(), session, actor, customer, _person(session, values["owner"], "owner"),
                                reason=values["reason"], ctx=access_context())
    return jsonify(serializers.customer(customer))


@bp.post(f"/customers/<{ID}:customer_id>/co-owners")
@permission(Action.CUSTOMER_ASSIGN)
@operation("Add a co-owner (at most three)", tag="customers", response="Customer", body=CO_OWNER, errors=(409,))
def add_co_owner(customer_id: int) -> Any:
    values = CO_OWNER.parse()
    session, actor = db_session(), auth.current()
    customer = customers_service.get_for_assignment(session, actor, customer_id)
    customers_service.add_co_owner(runtime(), session, actor, customer, _person(session, values["user"], "user"),
                                   ctx=access_context())
    return jsonify(serializers.customer(customer))


@bp.post(f"/customers/<{ID}:customer_id>/co-owners/remove")
@permission(Action.CUSTOMER_ASSIGN)
@operation("Take a co-owner off the customer", tag="customers", response="Customer", body=CO_OWNER)
def remove_co_owner(customer_id: int) -> Any:
    values = CO_OWNER.parse()
    session, actor = db_session(), auth.current()
    customer = customers_service.get_for_assignment(session, actor, customer_id)
    customers_service.remove_co_owner(runtime(), session, actor, customer,
                                      _person(session, values["user"], "user"), ctx=access_context())
    return jsonify(serializers.customer(customer))
