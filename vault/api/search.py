"""Search: customers and files the caller sees, by customer name, file title or account manager."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault.api import serializers
from vault.api.blueprint import bp
from vault.api.inputs import Query, parse_query
from vault.api.spec import operation
from vault.core.actions import Action
from vault.services import search as search_service
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

SEARCH_QUERY = (
    Query("q", "string", "Part of a customer's name or city, a file's title or an account manager's name "
                         "(accents and case ignored)."),
    Query("mine", "boolean", "1: only the customers the caller owns or co-owns, and their files."),
)


@bp.get("/search")
@permission(Action.CUSTOMER_READ)
@operation("Search the customers and files the caller sees", tag="customers", response="SearchResult",
           query=SEARCH_QUERY, errors=(400,),
           description=f"At most {search_service.LIMIT} customers and {search_service.LIMIT} files, never one the "
                       "caller may not see. Recorded as `customer:search` with the query and the ids returned. "
                       "An empty query is a 400 `query_required`.")
def search() -> Any:
    params = parse_query(SEARCH_QUERY)
    result = search_service.search(runtime(), db_session(), auth.current(), params["q"] or "",
                                   mine=params["mine"], ctx=access_context())
    return jsonify(query=result.query, customers=[serializers.customer(c) for c in result.customers],
                   files=[serializers.file_hit(hit) for hit in result.files],
                   more_customers=result.more_customers, more_files=result.more_files)
