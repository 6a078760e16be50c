"""Two decisions about who works one customer, made at the same moment (PostgreSQL, READ COMMITTED).

Each decision is judged on the customer as it stands: its owner (whose managers decide), its co-owners
(at most three) and who already works it. The second of two decisions at once read the customer before
the first committed, so it was judged on what no longer stood, and its record named an owner the
customer no longer had. The decision now reads the customer locked, and again, before the rules judge it.
SQLite takes one writer at a time, so these run on PostgreSQL only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.api.conftest import assert_error, events
from tests.support.locks import at_once, meanwhile
from vault.core.context import AccessContext
from vault.models import Customer, CustomerCoOwner, Role, User
from vault.services import accounts, managers
from vault.services import customers as customers_service

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])

WHY = "Better placed with the team"


def _step(rt: Any, session: Any, actor: str, customer_id: int, step: str, person: str) -> None:
    """`actor` decides about `customer_id` as the page and the API do: reads it, then decides."""
    deciding = accounts.get_user(session, actor)
    customer = customers_service.get_for_assignment(session, deciding, customer_id)
    other = accounts.get_user(session, person)
    if step == "owner":
        customers_service.set_owner(rt, session, deciding, customer, other, reason=WHY, ctx=AccessContext())
    elif step == "add":
        customers_service.add_co_owner(rt, session, deciding, customer, other, ctx=AccessContext())
    else:
        customers_service.remove_co_owner(rt, session, deciding, customer, other, ctx=AccessContext())


def _at_once(rt: Any, customer_id: int, first: tuple[str, str, str], second: tuple[str, str, str]) -> list[object]:
    """Two decisions (actor, step, person) about `customer_id`: the second read the customer while the first
    was not yet committed; what came of the second."""
    return at_once(rt, lambda session: _step(rt, session, first[0], customer_id, first[1], first[2]),
                   lambda session: _step(rt, session, second[0], customer_id, second[1], second[2]))


def _owner(rt: Any, customer_id: int) -> str | None:
    with rt.db.session() as session:
        customer = session.get(Customer, customer_id)
        return customer.owner.username if customer.owner else None


def _co_owners(rt: Any, customer_id: int) -> list[str]:
    with rt.db.session() as session:
        ids = session.scalars(select(CustomerCoOwner.user_id).where(CustomerCoOwner.customer_id == customer_id))
        return sorted(session.get(User, i).username for i in ids)


@pytest.fixture
def team(api: Any, users: Any, rt: Any, org: dict[str, int]) -> dict[str, int]:
    """`org`, and two more of Hana's people, Finn and Gus."""
    for name in ("finn", "gus"):
        users.make(name, Role.BORROWER)
    with rt.db.session() as session:
        for name in ("finn", "gus"):
            managers.set_manager(rt, session, accounts.get_user(session, name), accounts.get_user(session, "hana"),
                                 actor=None)
    return org


def test_an_owner_change_waiting_for_another_is_judged_on_the_new_owner(api, rt, team, db_backend):
    """Vera gives Eva's customer to Hana while Hana gives it to Bob. Hana may decide only for the people
    she manages; once it is hers she is not her own manager. Before, her change waited for Vera's, then
    wrote over it: the customer went to Bob on the word of someone who no longer had the say, and the
    record said it came from Eva. Now it is refused as it would be a moment later."""
    target = team["eva"]
    answers: list[Any] = []
    meanwhile(rt, lambda session: _step(rt, session, "vera", target, "owner", "hana"), lambda: answers.append(
        api.post(f"/api/v1/customers/{target}/owner", "hana", json={"owner": "bob", "reason": WHY})))
    assert_error(answers[0], 403, "not_owners_manager")
    assert _owner(rt, target) == "hana"
    assert [(e.actor_name, e.reason_code) for e in events(rt, "customer:assign", "denied")] == [
        ("hana", "not_owners_manager")]


def test_two_owner_changes_at_once_record_the_owner_each_one_replaced(api, rt, team, db_backend):
    """Hana gives Eva's customer to Bob while Vera gives it to Finn: both may (Vera manages Bob through
    Hana), so both happen, one after the other. The second's record must say it took the customer from
    Bob, or Bob's time as its owner is missing from the log (and from his departure report)."""
    target = team["eva"]
    assert _at_once(rt, target, ("hana", "owner", "bob"), ("vera", "owner", "finn")) == ["done"]
    assert _owner(rt, target) == "finn"
    with rt.db.session() as session:
        ids = {name: accounts.get_user(session, name).id for name in ("eva", "bob", "finn")}
    moves = [(json.loads(e.detail)["from"], json.loads(e.detail)["to"]) for e in events(rt, "customer:owner", "allowed")
             if e.customer_id == target]
    assert moves[-2:] == [(ids["eva"], ids["bob"]), (ids["bob"], ids["finn"])]


def test_two_co_owners_added_at_once_stay_within_three(api, rt, team, db_backend):
    """Eva's customer has Bea and Finn as co-owners; Hana adds Gus while Vera adds Bob. Each read two
    co-owners and both were added: four, above the limit of three. Now the second sees three."""
    target = team["eva"]
    api.post(f"/api/v1/customers/{target}/co-owners", "hana", json={"user": "finn"})
    assert _co_owners(rt, target) == ["bea", "finn"]
    assert _at_once(rt, target, ("hana", "add", "gus"), ("vera", "add", "bob")) == ["too_many_co_owners"]
    assert _co_owners(rt, target) == ["bea", "finn", "gus"]


def test_one_co_owner_added_twice_at_once_is_added_once(api, rt, team, db_backend):
    """Hana and Vera both add Gus (two managers, one idea). Each read that Gus did not work the customer;
    the second insert broke the table's key: a server error. Now the second is told he works it already."""
    target = team["eva"]
    assert _at_once(rt, target, ("hana", "add", "gus"), ("vera", "add", "gus")) == ["already_working"]
    assert _co_owners(rt, target) == ["bea", "gus"]
    assert len([e for e in events(rt, "customer:co_owner_add", "allowed") if e.subject_user_id]) == 2  # Bea, Gus


def test_a_co_owner_added_while_made_owner_does_not_work_it_twice(api, rt, team, db_backend):
    """Vera makes Bob the owner while Hana adds Bob as a co-owner. The change of owner takes a new owner off
    the co-owners; the addition, reading Bob as not working the customer, put him back: owner and
    co-owner at once, a seat of three taken for nothing. Now the addition sees him as the owner."""
    target = team["eva"]
    assert _at_once(rt, target, ("vera", "owner", "bob"), ("hana", "add", "bob")) == ["already_working"]
    assert _owner(rt, target) == "bob"
    assert _co_owners(rt, target) == ["bea"]
