"""The shared pool through the API, on SQLite and PostgreSQL: listing shows names and segments only, claims,
a manager's assignment and releases are audited and move ownership (with the owner-changed event), and
each refusal comes with its own reason."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import assert_error, events
from tests.pool.scene import OwnerChanges, claims, owner_of, pooled
from vault.models import CustomerCoOwner, Role, Segment, User

REASON = "The customer moved to another region"


@pytest.fixture
def settings_overrides():
    return {"policy": {"pool": {"claim_roles_vip": ["compiler"], "max_claims_key": 1}}}


def _set_manager(rt, username: str, manager: str) -> None:
    with rt.db.session() as session:
        person = session.query(User).filter_by(username=username).one()
        person.manager_id = session.query(User).filter_by(username=manager).one().id
        session.commit()


def test_a_seller_lists_claims_and_releases_and_every_step_is_audited(api, rt, cast):
    vip, key, ordinary = pooled(rt, Segment.VIP), pooled(rt, Segment.KEY, "Globex Lead"), pooled(rt, Segment.ORDINARY)
    owned = api.customer("Acme", shared=False)  # carl's, not in the pool
    listed = api.get("/api/v1/pool", "bob")
    assert listed.status_code == 200
    body = listed.get_json()
    # bob (a borrower) may not claim VIP customers here, so he does not see them; names and segments only.
    assert {c["id"] for c in body["customers"]} == {key, ordinary}
    assert all(set(c) == {"id", "name", "segment"} for c in body["customers"])
    assert body["claimable_segments"] == ["key", "ordinary"] and body["may_assign"] is False
    assert vip not in {c["id"] for c in body["customers"]} and owned not in {c["id"] for c in body["customers"]}
    [read] = events(rt, "pool:read")
    assert sorted(json.loads(read.detail)["ids"]) == sorted([key, ordinary])

    with OwnerChanges() as changes:
        claimed = api.post(f"/api/v1/pool/{key}/claim", "bob")
    assert claimed.status_code == 200, claimed.get_json()
    assert claimed.get_json()["owner"]["username"] == "bob" and owner_of(rt, key) == cast["bob"].id
    assert changes.seen == [{"customer_id": key, "previous": None, "new": cast["bob"].id, "cause": "pool_claim"}]
    [record] = events(rt, "pool:claim")
    assert record.actor_name == "bob" and record.customer_id == key
    assert json.loads(record.detail)["held"] == 1 and json.loads(record.detail)["limit"] == 1
    # Claimed, the customer is bob's: he sees it by ownership, and it left the pool.
    assert api.get(f"/api/v1/customers/{key}", "bob").status_code == 200
    assert key not in {c["id"] for c in api.get("/api/v1/pool", "bea").get_json()["customers"]}

    with OwnerChanges() as changes:
        released = api.post(f"/api/v1/customers/{key}/release-to-pool", "bob", json={"reason": REASON})
    assert released.status_code == 200, released.get_json()
    assert released.get_json()["owner"] is None and owner_of(rt, key) is None
    assert changes.seen == []  # nobody became the owner: no letter to write
    [record] = events(rt, "pool:release")
    assert record.reason_text == REASON and record.subject_user_id == cast["bob"].id
    [claim] = claims(rt, key)
    assert claim.end_cause == "released" and claim.ended_at is not None
    assert api.get(f"/api/v1/customers/{key}", "bob").status_code == 404  # need to know: no longer his


def test_claims_are_refused_outside_the_segment_over_the_limit_and_outside_the_pool(api, rt, cast):
    vip, first, second = pooled(rt, Segment.VIP), pooled(rt, Segment.KEY), pooled(rt, Segment.KEY)
    owned = api.customer("Acme", shared=False)
    assert_error(api.post(f"/api/v1/pool/{vip}/claim", "bob"), 403, "pool_segment")
    assert owner_of(rt, vip) is None
    assert api.post(f"/api/v1/pool/{first}/claim", "bob").status_code == 200
    assert_error(api.post(f"/api/v1/pool/{second}/claim", "bob"), 403, "pool_limit")
    assert owner_of(rt, second) is None
    # Someone else's customer: "not found" to who does not see it, "not in the pool" to who does.
    assert_error(api.post(f"/api/v1/pool/{owned}/claim", "bea"), 404, "not_found")
    assert_error(api.post(f"/api/v1/pool/{first}/claim", "carl"), 404, "not_found")
    assert_error(api.post(f"/api/v1/pool/{owned}/claim", "carl"), 403, "not_in_pool")
    assert_error(api.post("/api/v1/pool/999999/claim", "bob"), 404, "not_found")
    # Roles that cannot own customers do not claim, nor list the pool without people to assign to.
    assert_error(api.post(f"/api/v1/pool/{second}/claim", "ann"), 403, "not_permitted")
    assert_error(api.get("/api/v1/pool", "kim"), 403, "not_permitted")
    assert_error(api.get("/api/v1/pool", "aud"), 403, "not_permitted")
    # The compiler may claim the VIP customer the borrower could not.
    assert api.post(f"/api/v1/pool/{vip}/claim", "carl").status_code == 200
    codes = sorted(e.reason_code for e in events(rt, "pool:claim", "denied"))
    assert codes == ["not_found"] * 3 + ["not_in_pool", "not_permitted", "pool_limit", "pool_segment"], codes
    assert [e.reason_code for e in events(rt, "pool:read", "denied")] == ["not_permitted"] * 2
    assert len(events(rt, "pool:claim")) == 2


def test_only_the_owner_or_a_manager_releases_and_always_with_a_reason(api, rt, cast):
    customer = api.customer("Acme", owner="bob", shared=False)
    with rt.db.session() as session:  # bea works it too, as a co-owner, but does not own it
        session.add(CustomerCoOwner(customer_id=customer, user_id=cast["bea"].id))
        session.commit()
    assert_error(api.post(f"/api/v1/customers/{customer}/release-to-pool", "bea", json={"reason": REASON}),
                 403, "not_owner_or_manager")
    assert_error(api.post(f"/api/v1/customers/{customer}/release-to-pool", "carl", json={"reason": REASON}),
                 403, "not_owner_or_manager")  # carl created it and sees it, but neither owns nor manages
    assert_error(api.post(f"/api/v1/customers/{customer}/release-to-pool", "kim", json={"reason": REASON}),
                 404, "not_found")
    assert_error(api.post(f"/api/v1/customers/{customer}/release-to-pool", "bob", json={"reason": " no "}),
                 400, "reason_required")
    assert api.post(f"/api/v1/customers/{customer}/release-to-pool", "bob", json={}).status_code == 422
    assert owner_of(rt, customer) == cast["bob"].id
    _set_manager(rt, "bob", "bea")  # bea now manages bob: she may
    released = api.post(f"/api/v1/customers/{customer}/release-to-pool", "bea", json={"reason": REASON})
    assert released.status_code == 200, released.get_json()
    assert_error(api.post(f"/api/v1/customers/{customer}/release-to-pool", "bea", json={"reason": REASON}),
                 403, "already_in_pool")
    [record] = events(rt, "pool:release")
    assert record.actor_name == "bea" and record.subject_user_id == cast["bob"].id
    assert [e.reason_code for e in events(rt, "pool:release", "denied")] == [
        "not_owner_or_manager", "not_owner_or_manager", "not_found", "already_in_pool"]


def test_a_manager_assigns_from_the_pool_to_their_people_only(api, rt, cast, users):
    users.make("max", Role.BORROWER)
    _set_manager(rt, "bob", "max")
    key, other = pooled(rt, Segment.KEY), pooled(rt, Segment.KEY)
    listed = api.get("/api/v1/pool", "max").get_json()
    assert listed["may_assign"] is True and {key, other} <= {c["id"] for c in listed["customers"]}
    assert_error(api.post(f"/api/v1/pool/{key}/assign", "max", json={"owner": "max"}), 403, "own_gain")
    assert_error(api.post(f"/api/v1/pool/{key}/assign", "max", json={"owner": "bea"}), 403, "not_gainers_manager")
    assert_error(api.post(f"/api/v1/pool/{key}/assign", "bea", json={"owner": "bob"}), 403, "not_gainers_manager")
    assert_error(api.post(f"/api/v1/pool/{key}/assign", "max", json={"owner": "kim"}), 400, "invalid_owner")
    assert api.post(f"/api/v1/pool/{key}/assign", "max", json={"owner": "nobody"}).status_code == 422
    with OwnerChanges() as changes:
        assigned = api.post(f"/api/v1/pool/{key}/assign", "max", json={"owner": "bob"})
    assert assigned.status_code == 200, assigned.get_json()
    assert owner_of(rt, key) == cast["bob"].id
    assert changes.seen == [{"customer_id": key, "previous": None, "new": cast["bob"].id,
                             "cause": "pool_assignment"}]
    [record] = events(rt, "pool:assign")
    assert record.actor_name == "max" and record.subject_user_id == cast["bob"].id
    [claim] = claims(rt, key)
    assert claim.kind == "assignment" and claim.assigned_by_id is not None
    # The assignment counts against bob's limit of one key customer, for a manager and an approver alike.
    assert_error(api.post(f"/api/v1/pool/{other}/assign", "max", json={"owner": "bob"}), 403, "pool_limit")
    assert_error(api.post(f"/api/v1/pool/{other}/assign", "ann", json={"owner": "bob"}), 403, "pool_limit")
    assert api.post(f"/api/v1/pool/{other}/assign", "ann", json={"owner": "bea"}).status_code == 200
    # Taken, it is bea's: the approver, who does not work it, finds it gone.
    assert_error(api.post(f"/api/v1/pool/{other}/assign", "ann", json={"owner": "bob"}), 404, "not_found")
    assert_error(api.post(f"/api/v1/pool/{other}/assign", "max", json={"owner": "bob"}), 404, "not_found")


def test_a_compiler_enters_a_new_lead_straight_into_the_pool(api, rt, cast):
    created = api.post("/api/v1/customers", "carl", json={"name": "Hooli Lead", "segment": "key", "pool": True,
                                                          "notes": "Met at the trade fair"})
    assert created.status_code == 201, created.get_json()
    lead = created.get_json()["id"]
    assert created.get_json()["owner"] is None and owner_of(rt, lead) is None
    [record] = events(rt, "customer:create")
    assert json.loads(record.detail)["pool"] is True and record.subject_user_id is None
    assert lead in {c["id"] for c in api.get("/api/v1/pool", "bob").get_json()["customers"]}
    assert_error(api.post("/api/v1/customers", "carl", json={"name": "Other Lead", "segment": "key", "pool": True,
                                                             "owner": "bob"}), 400, "invalid_owner")
    assert api.post(f"/api/v1/pool/{lead}/claim", "bob").status_code == 200
