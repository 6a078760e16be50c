"""A claim nobody works lapses back to the pool after the policy's days, in the maintenance sweep, with the
clock moved instead of waiting; any contact logged or record update by the holder restarts the count."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.pool.scene import OwnerChanges, audited, claims, owner_of, pooled
from vault.core.context import AccessContext
from vault.models import Customer, Role, Segment, User
from vault.services import customers, maintenance, pool, records

CTX = AccessContext.cli()


@pytest.fixture
def settings_overrides():
    return {"policy": {"pool": {"lapse_days": 10}}}


def _claim(rt, user_id: int, customer_id: int) -> None:
    with rt.db.session() as session:
        pool.claim(rt, session, session.get(User, user_id), customer_id, ctx=CTX)
        session.commit()


def _sweep(rt) -> maintenance.MaintenanceReport:
    with rt.db.session() as session:
        report = maintenance.run(rt, session, ctx=CTX)
        session.commit()
        return report


def test_an_unworked_claim_lapses_after_the_policy_days_and_a_worked_one_stays(rt, users, clock):
    clock.freeze()
    bob = users.make("bob", Role.BORROWER)
    idle, worked = pooled(rt, Segment.KEY), pooled(rt, Segment.KEY)
    _claim(rt, bob.id, idle)
    _claim(rt, bob.id, worked)

    clock.advance(timedelta(days=6))
    with rt.db.session() as session:  # bob logs a call with one of them on day 6
        records.add_log(rt, session, session.get(User, bob.id), session.get(Customer, worked),
                        happened_on=clock.now().date(), channel="call", contact="Main Contact",
                        topic="Introduced myself", ctx=CTX)
        session.commit()

    clock.advance(timedelta(days=4, seconds=-1))  # just short of 10 days: nothing lapses
    assert _sweep(rt).claims_lapsed == 0
    assert owner_of(rt, idle) == bob.id

    clock.advance(timedelta(seconds=2))  # 10 days after the claim, 4 after the call
    with OwnerChanges() as changes:
        assert _sweep(rt).claims_lapsed == 1
    assert changes.seen == []  # back to the pool: nobody to write a letter about
    assert owner_of(rt, idle) is None and owner_of(rt, worked) == bob.id
    [lapse] = audited(rt, "pool:lapse")
    assert lapse.customer_id == idle and lapse.subject_user_id == bob.id and lapse.actor_id is None
    assert json.loads(lapse.detail)["lapse_days"] == 10
    [ended] = claims(rt, idle)
    assert ended.end_cause == "lapsed"
    assert _sweep(rt).claims_lapsed == 0  # nothing lapses twice

    with rt.db.session() as session:  # day 12: a record update by the holder counts as work too
        clock.advance(timedelta(days=2))
        records.edit(rt, session, session.get(User, bob.id), session.get(Customer, worked),
                     {"industry": "Machinery"}, ctx=CTX)
        session.commit()
    clock.advance(timedelta(days=9))  # 15 days after the call, 9 after the edit
    assert _sweep(rt).claims_lapsed == 0
    clock.advance(timedelta(days=1, seconds=1))
    assert _sweep(rt).claims_lapsed == 1
    assert owner_of(rt, worked) is None
    # Lapsed, the customers count no more against bob's limit, and are back in the pool to claim.
    with rt.db.session() as session:
        assert pool.open_claims(session, bob.id, Segment.KEY) == 0
        listed = pool.list_pool(rt, session, session.get(User, bob.id), ctx=CTX)
        assert {idle, worked} <= {c.id for c in listed.customers}


def test_a_claimed_customer_given_to_someone_else_closes_the_claim_without_a_lapse(rt, users, clock):
    clock.freeze()
    bob, bea = users.make("bob", Role.BORROWER), users.make("bea", Role.BORROWER)
    ann = users.make("ann", Role.APPROVER)
    lead = pooled(rt, Segment.ORDINARY)
    _claim(rt, bob.id, lead)
    with rt.db.session() as session:
        customers.set_owner(rt, session, session.get(User, ann.id), session.get(Customer, lead),
                            session.get(User, bea.id), ctx=CTX)
        session.commit()
    [moved] = claims(rt, lead)
    assert moved.end_cause == "moved"
    clock.advance(timedelta(days=30))
    assert _sweep(rt).claims_lapsed == 0
    assert owner_of(rt, lead) == bea.id  # an ordinary assignment does not lapse
