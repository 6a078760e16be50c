"""A reveal's reason is judged as a view's is: at least ten characters, in words, not a category's name.

A reviewer reading `customer:reveal` afterwards needs a real purpose as much as for a view. Before, a reveal
only needed a non-empty reason ("r", "Tour", "Complaint" revealed a customer's contacts), and an empty one
was a 400/422 of the reveal's own, unrecorded, that the view's policy codes never reached. Now the policy
(`policy.records`, through `policy.loans.reason_problem`) judges the reason and the place on the page and
through the API alike: the same 403 code, the same refusal record, and no reveal spent.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.api.conftest import assert_error, events
from tests.conftest import login
from vault.models import RevealUsage

GOOD = {"reason": "Call about the renewal", "place": "Head office"}

SLIPS = [
    pytest.param({"reason": ""}, "reason_too_short", id="empty reason"),
    pytest.param({"reason": "  \t "}, "reason_too_short", id="blank reason"),
    pytest.param({"reason": "Tour"}, "reason_too_short", id="short reason"),
    pytest.param({"reason": ".......... ---"}, "reason_not_meaningful", id="punctuation only"),
    pytest.param({"reason": "Visit preparation"}, "reason_copies_category", id="a category's name"),
    pytest.param({"reason": "contract_renewal"}, "reason_copies_category", id="a category's value"),
    pytest.param({"place": ""}, "place_required", id="empty place"),
    pytest.param({"place": "- / ."}, "place_required", id="a place of punctuation only"),
    pytest.param({"reason": "r", "place": ""}, "reason_too_short", id="both: the first in field order"),
]


def _refusals(rt: Any) -> list[tuple[Any, ...]]:
    """The refused reveals as a reviewer reads them: who, which customer, why refused."""
    return [(e.actor_name, e.customer_id, e.reason_code) for e in events(rt, "customer:reveal", "denied")]


def _spent(rt: Any) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.coalesce(func.sum(RevealUsage.used), 0)))


class Browser:
    """Bob on the pages, sending the reveal form as a browser does."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        self.token = login(self.client, "bob")

    def reveal(self, customer_id: int, typed: dict[str, str]) -> Any:
        return self.client.post(f"/customers/{customer_id}/reveal", data={
            "csrf_token": self.token, "rv-reason": typed["reason"], "rv-place": typed["place"]})


@pytest.fixture
def browser(app: Any, api: Any) -> Browser:
    api.token("bob")  # the agreement accepted, as the API needs
    return Browser(app)


@pytest.mark.parametrize(("slip", "code"), SLIPS)
def test_a_reveal_gets_the_views_reason_rule_on_the_page_and_through_the_api(api, rt, browser, slip, code):
    customer = api.customer("Nordlicht Handel", owner="bob", shared=False)
    page = browser.reveal(customer, {**GOOD, **slip})
    assert page.status_code == 403, page.get_data(as_text=True)[:500]
    on_page = _refusals(rt)
    assert on_page == [("bob", customer, code)]
    assert_error(api.post(f"/api/v1/customers/{customer}/reveal", "bob", json={**GOOD, **slip}), 403, code)
    # Recorded alike, nothing revealed, no reveal spent.
    assert _refusals(rt) == on_page * 2
    assert events(rt, "customer:reveal") == []
    assert _spent(rt) == 0
    shown = api.post(f"/api/v1/customers/{customer}/reveal", "bob", json=GOOD)
    assert shown.status_code == 200, shown.get_json()
    assert shown.get_json()["remaining"] == 14 and shown.get_json()["remaining_today"] == 19


def test_the_page_shows_the_slip_beside_its_field_and_keeps_the_read(api, rt, browser):
    customer = api.customer("Nordlicht Handel", owner="bob", shared=False)
    before = len(events(rt, "customer:read"))
    page = browser.reveal(customer, {"reason": "Contract renewal", "place": "Office"})
    assert page.status_code == 403
    text = page.get_data(as_text=True)
    # The customer page again, masked, the form filled in as typed and the slip beside the reason.
    assert 'id="reveal-form"' in text and "Nordlicht Handel" in text and "Contract renewal</textarea>" in text
    assert "a category name is not a reason" in text
    # The customer page was read: its record stands beside the refusal's.
    assert len(events(rt, "customer:read")) == before + 1
    assert [e.reason_code for e in events(rt, "customer:reveal", "denied")] == ["reason_copies_category"]


def test_a_form_the_page_refuses_shows_every_slip_and_records_nothing(api, rt, browser):
    """An over-long reason is the form's own refusal (400, nothing decided); the policy still speaks beside the
    place the form let through, so the person sees both slips in one answer."""
    customer = api.customer("Nordlicht Handel", owner="bob", shared=False)
    page = browser.reveal(customer, {"reason": "x" * 501, "place": "-"})
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "Say where you are" in text
    assert _refusals(rt) == [] and events(rt, "customer:reveal") == [] and _spent(rt) == 0


def test_a_good_reason_reveals_on_the_page(api, rt, browser):
    customer = api.customer("Nordlicht Handel", owner="bob", shared=False)
    page = browser.reveal(customer, GOOD)
    assert page.status_code == 200
    assert [e.reason_text for e in events(rt, "customer:reveal")] == [GOOD["reason"]]
    assert _spent(rt) == 2  # the customer's unit and the day's
