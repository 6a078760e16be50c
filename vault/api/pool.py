"""The shared pool: what the caller may take from it, claiming, a manager's assignment from it, and an owner
or manager returning a customer to it. The pool shows names and segments only; every call is audited."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from vault.api import serializers
from vault.api.blueprint import ID, bp
from vault.api.errors import invalid
from vault.api.inputs import Field, JsonBody, Query, parse_query
from vault.api.spec import operation
from vault.core.actions import Action
from vault.services import pool as pool_service
from vault.services.accounts import find_user
from vault.web import auth
from vault.web.guard import permission
from vault.web.pipeline import access_context, db_session, runtime

LIST_QUERY = (Query("page", "integer", "Page number, from 1 (50 customers a page)."),)
ASSIGN = JsonBody(
    "PoolAssign",
    fields=(Field("owner", "string", "User name of the account manager given the customer.", max_length=64),),
)
RELEASE = JsonBody(
    "PoolRelease",
    fields=(Field("reason", "string", "Why the customer goes back to the pool (recorded; at least 5 characters).",
                  max_length=pool_service.MAX_REASON),),
)


@bp.get("/pool")
@permission(Action.POOL_READ)
@operation("Customers in the shared pool the caller may take", tag="pool", response="PoolList", query=LIST_QUERY,
           description="Customers without an owner, of the segments the caller may claim (every segment for a "
                       "manager or approver, who may assign). Names and segments only. Recorded as `pool:read` "
                       "with the ids returned. Someone on notice claims nothing, so sees nothing to claim: 403 "
                       "`person_departing` unless they may assign.")
def list_pool() -> Any:
    params = parse_query(LIST_QUERY)
    found = pool_service.list_pool(runtime(), db_session(), auth.current(), page=params["page"] or 1,
                                   ctx=access_context())
    return jsonify(customers=[serializers.pool_customer(c) for c in found.customers], total=found.total,
                   page=found.page, pages=found.pages, claimable_segments=sorted(str(s) for s in found.claimable),
                   may_assign=found.may_assign)


@bp.post(f"/pool/<{ID}:customer_id>/claim")
@permission(Action.POOL_CLAIM)
@operation("Claim a customer from the pool", tag="pool", response="Customer",
           description="The caller becomes the owner. Refused with `pool_segment` when the caller's roles may not "
                       "claim the customer's segment, `pool_limit` when they hold as many of that segment as the "
                       "policy allows, `person_departing` when they are on notice, `own_release` when they released "
                       "it to the pool from someone else's book, and `not_in_pool` when someone "
                       "else has it (a customer the caller does not see is 404). The claim lapses back to the "
                       "pool after the policy's lapse days without a contact logged or a record update.")
def claim(customer_id: int) -> Any:
    customer = pool_service.claim(runtime(), db_session(), auth.current(), customer_id, ctx=access_context())
    return jsonify(serializers.customer(customer))


@bp.post(f"/pool/<{ID}:customer_id>/assign")
@permission(Action.POOL_ASSIGN)
@operation("Give a pooled customer to one of the caller's people", tag="pool", response="Customer", body=ASSIGN,
           description="A manager (for someone below them in the chain) or an approver; never to themselves. The "
                       "person gets it as a claim: their segment rights and limit apply, and it lapses alike; "
                       "nobody on notice gets one (`person_departing`).")
def assign(customer_id: int) -> Any:
    values = ASSIGN.parse()
    session = db_session()
    owner = find_user(session, values["owner"].strip())
    if owner is None:
        raise invalid({"owner": "is not a known user name"})
    customer = pool_service.assign(runtime(), session, auth.current(), customer_id, owner, ctx=access_context())
    return jsonify(serializers.customer(customer))


@bp.post(f"/customers/<{ID}:customer_id>/release-to-pool")
@permission(Action.POOL_RELEASE)
@operation("Return a customer to the shared pool", tag="pool", response="Customer", body=RELEASE,
           description="The owner, the owner's manager (up the chain) or an approver, with a reason. The customer "
                       "is left without an owner (co-owners stay) until someone claims or is assigned it.")
def release(customer_id: int) -> Any:
    values = RELEASE.parse()
    customer = pool_service.release(runtime(), db_session(), auth.current(), customer_id, reason=values["reason"],
                                    ctx=access_context())
    return jsonify(serializers.customer(customer))
