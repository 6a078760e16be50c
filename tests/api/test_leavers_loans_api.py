"""The open loans of people on notice through the API, on both databases: what the leavers' page lists, to
custodians (approved and active ones) and approvers (every open one) only, each marked revocable as the
page offers its button (never one's own)."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import assert_error, events
from vault.core.context import AccessContext
from vault.models import Role
from vault.services import accounts, departures

PATH = "/api/v1/departures/loans"


def test_custodians_and_approvers_see_leavers_open_loans(api, rt, users, cast):
    users.make("kip", Role.CUSTODIAN, Role.BORROWER)  # keeps files, borrows, and gives notice
    customer = api.customer()
    plans, prices = api.upload(customer), api.upload(customer, title="Prices")
    active, requested = api.approved_loan(plans, "kip"), api.loan(prices, "kip")
    api.approved_loan(plans, "bob")  # bob stays: his loan is not listed
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, accounts.get_user(session, "kip"),
                                   last_day=departures.today(rt.settings) + timedelta(days=20), successor=None,
                                   ctx=AccessContext.cli())
    body = api.get(PATH, "kim").get_json()
    # A request waits for the approvers: custodians are not shown it (`visible_loans`), here as anywhere.
    assert [(loan["id"], loan["status"], loan["revocable"]) for loan in body["loans"]] == [(active, "active", True)]
    first = body["loans"][0]
    assert first["borrower"]["username"] == "kip" and first["last_day"] and first["due_at"]
    assert first["document"] == {"id": plans, "title": "Annual report", "grade": 2,
                                 "customer": {"id": customer, "name": "Acme"}}
    assert [loan["revocable"] for loan in api.get(PATH, "ann").get_json()["loans"]] == [True, False]
    # kip may revoke loans, but never his own: the list shows him nothing to revoke.
    assert [loan["revocable"] for loan in api.get(PATH, "kip").get_json()["loans"]] == [False, False]
    for person in ("bob", "carl", "aud", "adm"):
        assert_error(api.get(PATH, person), 403, "not_permitted")
    # Revoked with the reason offered (the loan's own route), it leaves the list.
    revoked = api.post(f"/api/v1/loans/{active}/revoke", "kim", json={"reason": body["reason"]})
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    assert api.get(PATH, "kim").get_json()["loans"] == []
    assert [loan["id"] for loan in api.get(PATH, "ann").get_json()["loans"]] == [requested]
    [record] = events(rt, "loan:revoke")
    assert (record.actor_name, record.loan_id, record.reason_text) == ("kim", active, body["reason"])
