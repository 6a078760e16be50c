"""On notice, a leaver stays co-owner of the customers they hand over until their last day, to introduce
the successor; that kept the owner's reveal quota, so they could read their whole former book's contacts
as its owner did. On notice, everyone reveals at the quota for customers they do not work."""

from __future__ import annotations

from typing import Any

from tests.api.test_review_notice_deciders import give_notice
from vault.models import Customer

WHY = {"reason": "Calling them about the renewal", "place": "Office"}


def test_a_leaver_reveals_their_former_book_at_the_quota_of_customers_they_do_not_work(
        api: Any, rt: Any, org: dict[str, int]) -> None:
    customer = org["bob"]  # Nordlicht Handel, bob's own
    with rt.db.session() as session:
        segment = session.get(Customer, customer).segment
    owners, others = (rt.settings.records.reveals(segment, owner) for owner in (True, False))
    assert owners > others
    before = api.post(f"/api/v1/customers/{customer}/reveal", "bob", json=WHY)
    assert before.status_code == 200 and before.get_json()["remaining"] == owners - 1
    give_notice(rt, "bob")
    after = api.post(f"/api/v1/customers/{customer}/reveal", "bob", json=WHY)
    # The period's reveals so far count against the lower quota: two spent of it now.
    assert after.status_code == 200 and after.get_json()["remaining"] == others - 2
