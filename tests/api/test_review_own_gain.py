"""Nobody widens their own reach by a detour, on both databases: a manager refused a report's customer as
their own gain, or an approver who also claims, cannot release it to the pool and claim it back; an
approver cannot give a customer they do not see to someone they manage, and so see it through them. Each
refusal is recorded; the plain ways stay open (an owner reclaiming what they released themselves, a
colleague claiming what a manager released, an approver giving a customer to someone outside their chain)."""

from __future__ import annotations

import io
from typing import Any

from sqlalchemy import func, select

from tests.api.conftest import PDF, assert_error, events
from vault.models import Customer, Document, Role
from vault.services import accounts, managers

WHY = "Freeing it up for the team"


def _owner(rt: Any, customer_id: int) -> str | None:
    with rt.db.session() as session:
        customer = session.get(Customer, customer_id)
        return customer.owner.username if customer.owner else None


def test_a_manager_cannot_take_a_report_s_customer_through_the_pool(api: Any, rt: Any, org: dict[str, int]) -> None:
    target = org["eva"]
    assert_error(api.post(f"/api/v1/customers/{target}/owner", "hana", json={"owner": "hana", "reason": WHY}),
                 403, "own_gain")
    assert api.post(f"/api/v1/customers/{target}/release-to-pool", "hana", json={"reason": WHY}).status_code == 200
    assert_error(api.post(f"/api/v1/pool/{target}/claim", "hana"), 403, "own_release")
    assert _owner(rt, target) is None
    assert [(e.actor_name, e.reason_code) for e in events(rt, "pool:claim", "denied")] == [("hana", "own_release")]
    claimed = api.post(f"/api/v1/pool/{target}/claim", "bob")  # a colleague takes it from there
    assert claimed.status_code == 200 and _owner(rt, target) == "bob"


def test_an_approver_who_claims_cannot_take_any_customer_through_the_pool(api: Any, rt: Any, users: Any,
                                                                          org: dict[str, int]) -> None:
    users.make("abby", Role.APPROVER, Role.BORROWER)
    target = org["bob"]
    assert api.get("/api/v1/customers/lookup?q=nordlicht", "abby").status_code == 200  # a day's sight, audited
    assert api.post(f"/api/v1/customers/{target}/release-to-pool", "abby", json={"reason": WHY}).status_code == 200
    assert_error(api.post(f"/api/v1/pool/{target}/claim", "abby"), 403, "own_release")
    assert _owner(rt, target) is None


def test_an_owner_may_claim_back_what_they_released_themselves(api: Any, rt: Any, org: dict[str, int]) -> None:
    target = org["bob"]
    assert api.post(f"/api/v1/customers/{target}/release-to-pool", "bob", json={"reason": WHY}).status_code == 200
    assert api.post(f"/api/v1/pool/{target}/claim", "bob").status_code == 200
    assert _owner(rt, target) == "bob"


def test_an_approver_cannot_see_a_customer_by_giving_it_to_someone_they_manage(api: Any, rt: Any, users: Any,
                                                                                org: dict[str, int]) -> None:
    users.make("abe2", Role.APPROVER)
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "eva"), accounts.get_user(session, "abe2"),
                             actor=None)
    target = org["bea"]  # Bea's customer: abe2 does not see it
    assert_error(api.get(f"/api/v1/customers/{target}", "abe2"), 404, "not_found")
    assert_error(api.post(f"/api/v1/customers/{target}/owner", "abe2", json={"owner": "eva", "reason": WHY}),
                 403, "own_reach")
    assert _owner(rt, target) == "bea"
    assert_error(api.get(f"/api/v1/customers/{target}", "abe2"), 404, "not_found")
    moved = api.post(f"/api/v1/customers/{target}/owner", "abe2", json={"owner": "bob", "reason": WHY})
    assert moved.status_code == 200 and _owner(rt, target) == "bob"  # outside their chain: as before
    with rt.db.session() as session:
        assert session.scalar(select(Customer.owner_id).where(Customer.id == target)) is not None


def test_a_compiler_adds_files_only_to_customers_they_work(api: Any, rt: Any, users: Any,
                                                          org: dict[str, int]) -> None:
    """A file compiled for a customer lets its compiler see the customer for good: after a look-up (a day's
    sight) a compiler could turn that day into standing sight by uploading anything there."""
    users.make("cora", Role.COMPILER)
    target = org["eva"]
    assert api.get("/api/v1/customers/lookup?q=iberica", "cora").status_code == 200
    before = {o.key for o in rt.store.list()}
    refused = api.post(f"/api/v1/customers/{target}/documents", "cora", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(PDF), "plan.pdf"), "title": "Anything", "grade": "1"})
    assert_error(refused, 403, "not_working_customer")
    with rt.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Document).where(Document.customer_id == target)) == 0
    assert {o.key for o in rt.store.list()} == before
    assert [(e.actor_name, e.reason_code) for e in events(rt, "document:upload", "denied")] == [
        ("cora", "not_working_customer")]
    added = api.post(f"/api/v1/customers/{target}/co-owners", "hana", json={"user": "cora"})
    assert added.status_code == 200, added.get_json()
    assert api.upload(target, grade=1, user="cora")  # working it now: as a co-owner
