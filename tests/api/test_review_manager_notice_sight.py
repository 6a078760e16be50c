"""A manager on notice, on both databases: a manager sees the customers of everyone below them, down the
whole chain, and on notice kept that sight: in their last weeks they listed, searched, read and revealed the
contacts of their whole team's book, and only an alert (`outside_book`) followed. On notice their standing
sight narrows to the customers they own or co-own; their team's customers are reached by an audited look-up
only, with its limits, as anyone's (the alert still follows such a read). The SQL condition, the one-row
rule, the list, the search, the files, the record's history and the to-do list agree; a manager above them
who is not leaving keeps seeing the team; a withdrawn notice gives the sight back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests.api.conftest import assert_error, events
from tests.api.test_review_notice_deciders import give_notice
from vault import policy
from vault.core.actions import Action
from vault.core.context import AccessContext
from vault.models import Alert, Customer, Departure
from vault.services import accounts, departures, todo

WHY = {"reason": "Preparing the renewal call", "place": "Office"}


def _listed(api: Any, who: str) -> set[int]:
    answer = api.get("/api/v1/customers", who)
    assert answer.status_code == 200, answer.get_json()
    return {c["id"] for c in answer.get_json()["customers"]}


def _searched(api: Any, who: str, q: str) -> set[int]:
    answer = api.get("/api/v1/search", who, query_string={"q": q})
    assert answer.status_code == 200, answer.get_json()
    return {c["id"] for c in answer.get_json()["customers"]}


def _seen_by_policy(rt: Any, who: str, ids: list[int]) -> tuple[set[int], set[int]]:
    """The SQL condition and the one-row rule, for the same person and customers."""
    with rt.db.session() as session:
        person = accounts.get_user(session, who)
        in_sql = set(session.scalars(select(Customer.id).where(Customer.id.in_(ids),
                                                               policy.visible_customers(person))))
        one_row = {i for i in ids if policy.authorize(person, Action.CUSTOMER_READ, session.get(Customer, i))}
        return in_sql, one_row


def test_a_manager_on_notice_sees_only_their_own_book_and_reaches_the_team_by_look_up(
        api: Any, rt: Any, org: dict[str, int]) -> None:
    team = [org["eva"], org["bob"]]
    own = api.customer("Hana Direct", owner="hana", shared=False)
    document = api.upload(org["eva"], title="Ibérica price list")
    assert _listed(api, "hana") == {*team, own}
    departure = give_notice(rt, "hana")

    assert _listed(api, "hana") == {own}
    assert _searched(api, "hana", "Ibérica") == set() and _searched(api, "hana", "Nordlicht") == set()
    assert _seen_by_policy(rt, "hana", [*team, own]) == ({own}, {own})
    mark = len(events(rt, "customer:read", "denied"))
    for customer in team:
        assert_error(api.get(f"/api/v1/customers/{customer}", "hana"), 404, "not_found")
        assert_error(api.post(f"/api/v1/customers/{customer}/reveal", "hana", json=WHY), 404, "not_found")
    assert [(e.actor_name, e.reason_code) for e in events(rt, "customer:read", "denied")[mark:]] == [
        ("hana", "not_found")] * 2
    assert events(rt, "customer:reveal") == []
    assert_error(api.get(f"/api/v1/documents/{document}", "hana"), 404, "not_found")
    # Vera, above Hana and not leaving, still sees the whole chain below her.
    assert _listed(api, "vera") >= set(team)

    # A look-up reaches one customer for a day, as it does for anyone; the read is noticed (`outside_book`).
    found = api.get("/api/v1/customers/lookup", "hana", query_string={"q": "Nordlicht"})
    assert found.status_code == 200 and [c["id"] for c in found.get_json()["customers"]] == [org["bob"]]
    assert api.get(f"/api/v1/customers/{org['bob']}", "hana").status_code == 200
    assert _listed(api, "hana") == {own, org["bob"]}
    # What the chain of managers gave beyond sight (the record's old versions) is not given by a look-up.
    assert_error(api.get(f"/api/v1/customers/{org['bob']}/history", "hana"), 403, "not_in_chain")
    with rt.db.session() as session:
        assert [a.user.username for a in session.scalars(select(Alert).where(Alert.rule == "outside_book"))] == [
            "hana"]

    with rt.db.session() as session:
        departures.withdraw(rt, session, None, session.get(Departure, departure),
                            reason="Stays after all: a counter-offer", ctx=AccessContext.cli())
    assert _listed(api, "hana") == {*team, own}
    assert _seen_by_policy(rt, "hana", [*team, own]) == ({*team, own}, {*team, own})
    assert api.get(f"/api/v1/customers/{org['eva']}/history", "hana").status_code == 200


def test_a_manager_on_notice_is_not_shown_the_team_s_overdue_records(
        api: Any, rt: Any, org: dict[str, int], clock: Any) -> None:
    """The home page's to-do list names the overdue records of the manager's team: on notice, only their
    own."""
    own = api.customer("Hana Direct", owner="hana", shared=False)
    clock.advance(timedelta(days=800))
    with rt.db.session() as session:
        assert {o.id for o in todo.overdue_customers(rt, session, accounts.get_user(session, "hana"))} == {
            org["eva"], org["bob"], own}
    give_notice(rt, "hana")
    with rt.db.session() as session:
        assert {o.id for o in todo.overdue_customers(rt, session, accounts.get_user(session, "hana"))} == {
            own}
