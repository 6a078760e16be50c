"""Customers: the policy-scoped list with search, creation by compilers, one customer with its documents."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault.api import serializers
from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import Field, JsonBody, Query, parse_query
from vault.api.spec import operation
from vault.core.actions import Action
from vault.models import Segment
from vault.services import customers as customers_service
from vault.services import documents as documents_service
from vault.services.accounts import find_user
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

LIST_QUERY = (
    Query("q", "string", "Only customers whose name contains this text (case-insensitive)."),
    Query("page", "integer", "Page number, from 1 (50 customers a page)."),
)
CREATE = JsonBody(
    "CustomerCreate",
    fields=(
        Field("name", "string", "The customer's name (unique, case-insensitive).", max_length=200),
        Field("segment", "string", "vip, key or ordinary.", choices=tuple(str(s) for s in Segment)),
        Field("owner", "string", "User name of the account manager; the caller when left out.",
              required=False, nullable=True, max_length=64),
        Field("notes", "string", "Free notes.", required=False, default="", max_length=4000),
    ),
)


@bp.get("/customers")
@permission(Action.CUSTOMER_READ)
@operation("Customers the caller may see, by name", tag="customers", response="CustomerList", query=LIST_QUERY)
def list_customers() -> Any:
    params = parse_query(LIST_QUERY)
    found = customers_service.list_customers(db_session(), auth.current(), query=params["q"] or "",
                                             page=params["page"] or 1)
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
        notes=values["notes"], ctx=access_context(),
    )
    return jsonify(serializers.customer(customer)), 201


@bp.get(f"/customers/<{ID}:customer_id>")
@permission(Action.CUSTOMER_READ)
@operation("A customer with the metadata of the documents the caller may see", tag="customers",
           response="CustomerDetail")
def show_customer(customer_id: int) -> Any:
    session, actor = db_session(), auth.current()
    customer = documents_service.get_customer(session, actor, customer_id)
    documents = documents_service.customer_documents(session, actor, customer)
    return jsonify(serializers.customer_detail(customer, documents))
