"""A rotation task of someone on notice: the customer rotated to them before the notice, whose contact they
confirm. Left open on notice, on purpose: the list names only customers the leaver still owns, which are the
customers on their own handover list, and confirming records the contact without changing who owns, sees or
hands over anything. Once the customer is handed on, the task is gone and its confirmation refused. These
tests hold the reasons for that; should one fail, the task belongs under `rotation_departing` too."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.departure.conftest import days_from_today
from tests.departure.test_rotation_pages import _proposal, _scene
from tests.support.factories import reach_main_contact
from vault import policy
from vault.core.context import AccessContext
from vault.models import Customer, HandoverItem, RotationProposal
from vault.policy import visibility
from vault.services import accounts, departures, rotation

CTX = AccessContext.cli()


def _rotated_to_bea_then_notice(rt, users, clock) -> dict[str, int]:
    """Mia's plan rotates Acme from Bob to Bea; then Bea gives notice, with no successor named yet."""
    ids = _scene(rt, users, clock)
    with rt.db.session() as session:
        rotation.propose(rt, session, accounts.get_user(session, "mia"), ctx=CTX)
    ids["proposal"] = _proposal(rt, ids["acme"]).id
    with rt.db.session() as session:
        rotation.approve(rt, session, accounts.get_user(session, "mia"), session.get(RotationProposal, ids["proposal"]),
                         ctx=CTX)
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, accounts.get_user(session, "bea"),
                                   last_day=days_from_today(10), successor=None, ctx=CTX)
    return ids


def _visible(rt, name: str) -> set[int]:
    with rt.db.session() as session:
        return set(session.scalars(select(Customer.id).where(
            visibility.visible_customers(accounts.get_user(session, name)))))


def test_a_leavers_task_names_only_their_handover_and_confirming_widens_nothing(rt, users, clock):
    ids = _rotated_to_bea_then_notice(rt, users, clock)
    before = _visible(rt, "bea")
    with rt.db.session() as session:
        bea = accounts.get_user(session, "bea")
        named = {task.customer_id for task in rotation.read_tasks(rt, session, bea, ctx=CTX)}
        handover = set(session.scalars(select(HandoverItem.customer_id)))
    assert named == {ids["acme"]} and named <= handover and named <= before
    reach_main_contact(rt, ids["acme"], "bea")
    with rt.db.session() as session:
        bea = accounts.get_user(session, "bea")
        rotation.confirm_contact(rt, session, bea, rotation.get_task(session, bea, ids["proposal"]), ctx=CTX)
    with rt.db.session() as session:
        item = session.scalar(select(HandoverItem).where(HandoverItem.customer_id == ids["acme"]))
        assert (item.to_user_id, item.confirmed_at, item.pooled_at) == (None, None, None)  # still to hand over
        assert session.get(Customer, ids["acme"]).owner_id == ids["bea"]
    assert _visible(rt, "bea") == before


def test_once_handed_on_the_task_is_gone_and_cannot_be_confirmed(rt, users, clock):
    ids = _rotated_to_bea_then_notice(rt, users, clock)
    with rt.db.session() as session:
        item = session.scalar(select(HandoverItem).where(HandoverItem.customer_id == ids["acme"]))
        departures.reassign(rt, session, None, item, accounts.get_user(session, "bob"), ctx=CTX)
    reach_main_contact(rt, ids["acme"], "bea")  # still a co-owner until the last day, to introduce Bob
    with rt.db.session() as session:
        bea = accounts.get_user(session, "bea")
        assert rotation.tasks_for(session, bea) == []
        with pytest.raises(policy.Denied) as refused:
            rotation.confirm_contact(rt, session, bea, rotation.get_task(session, bea, ids["proposal"]), ctx=CTX)
    assert refused.value.decision.code == "no_longer_owner"
