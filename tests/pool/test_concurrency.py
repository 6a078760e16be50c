"""Twenty simultaneous claims keep the per-segment limit, and of twenty people claiming one customer exactly
one wins, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.pool.scene import audited, claims, owner_of, pooled
from tests.support.simultaneous import race
from vault.core.context import AccessContext
from vault.models import Role, Segment, User
from vault.services import pool

CLAIMERS = 20


@pytest.fixture
def settings_overrides():
    return {"policy": {"pool": {"max_claims_key": 3}}}


def test_twenty_claims_by_one_person_stop_at_the_segment_limit(rt, users):
    bob = users.make("bob", Role.BORROWER)
    leads = [pooled(rt, Segment.KEY) for _ in range(CLAIMERS)]

    def attempt(customer_id: int) -> Callable[..., None]:
        def claim(session) -> None:
            pool.claim(rt, session, session.get(User, bob.id), customer_id, ctx=AccessContext.cli())
        return claim

    results = race(rt, [attempt(c) for c in leads], success="claimed")
    assert sorted(results) == ["claimed"] * 3 + ["pool_limit"] * (CLAIMERS - 3), results
    assert sum(owner_of(rt, c) == bob.id for c in leads) == 3
    assert len(audited(rt, "pool:claim")) == 3


def test_twenty_people_claiming_one_customer_give_it_to_exactly_one(rt, users):
    people = [users.make(f"seller{i}", Role.BORROWER) for i in range(CLAIMERS)]
    lead = pooled(rt, Segment.ORDINARY)

    def attempt(person_id: int) -> Callable[..., None]:
        def claim(session) -> None:
            pool.claim(rt, session, session.get(User, person_id), lead, ctx=AccessContext.cli())
        return claim

    results = race(rt, [attempt(p.id) for p in people], success="claimed")
    assert results.count("claimed") == 1, results
    # The others find it gone: a customer with an owner they do not work is "not found" to them.
    assert set(results) - {"claimed"} == {"not_found"}, results
    winner = owner_of(rt, lead)
    assert winner in {p.id for p in people}
    [held] = claims(rt, lead)
    assert held.user_id == winner and held.ended_at is None
    assert [e.actor_id for e in audited(rt, "pool:claim")] == [winner]
