"""Listing other people's loans is recorded, on both databases: each loan in a queue names a customer and a
file the approver or custodian may not work, so every page that shows any records `loan:queue` with the ids
it showed and which listing it was, in the listing's own transaction; a page of one's own loans records
nothing."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import events
from tests.conftest import login


def _listed(rt: Any) -> list[tuple[str, str, list[int]]]:
    return [(e.actor_name, json.loads(e.detail)["listing"], json.loads(e.detail)["ids"])
            for e in events(rt, "loan:queue")]


def test_every_listing_of_other_peoples_loans_is_recorded(api: Any, app: Any, rt: Any) -> None:
    customer = api.customer("Nordlicht", owner="bob", shared=False)
    waiting = api.loan(api.upload(customer, title="Price list"), "bob")
    released = api.approved_loan(api.upload(customer, grade=3, title="Minutes", custodian="kim"), "bob")

    assert api.get("/api/v1/loans?mine=1", "bob").status_code == 200  # one's own: nothing recorded
    assert api.get("/api/v1/loans", "bob").status_code == 200
    assert _listed(rt) == []

    assert api.get("/api/v1/loans?queue=approvals", "ann").status_code == 200
    assert api.get("/api/v1/loans", "ann").status_code == 200
    assert api.get("/api/v1/loans?queue=custody", "kim").status_code == 200
    assert api.get("/api/v1/loans?queue=custody_active", "kim").status_code == 200  # nothing active: no record
    assert _listed(rt) == [("ann", "approvals", [waiting]), ("ann", "list", [released, waiting]),
                           ("kim", "custody", [released])]

    approver = app.test_client()
    token = login(approver, "ann")
    assert approver.get("/loans/approvals").status_code == 200
    # The batch form sent back with its error (nothing ticked): the queue it shows again is recorded too.
    assert approver.post("/loans/approvals", data={"csrf_token": token, "comment": ""}).status_code == 400
    custodian = app.test_client()
    login(custodian, "kim")
    assert custodian.get("/loans/custody").status_code == 200
    # Signing in lands on the start page, whose to-do list shows the same loans: recorded as "home".
    pages = _listed(rt)[3:]
    assert [entry for entry in pages if entry[1] != "home"] == [
        ("ann", "approvals", [waiting]), ("ann", "approvals", [waiting]), ("kim", "custody", [released])]
    assert [entry for entry in pages if entry[1] == "home"] == [("ann", "home", [waiting]), ("kim", "home", [released])]
