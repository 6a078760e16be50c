"""The upload form names customers, so it offers only those a file may be added to and records whom it named.

Before, `GET /documents/new` listed by name every customer the person saw (those reached by a look-up for a
day too), unpaginated, and recorded nothing, while the customer list, the search
and the start page record every customer they name (`customer:list`); and it offered customers reached by a
look-up, to which the upload is then refused (`not_working_customer`). Now it offers the customers the
person works by a standing tie, as the upload's rule asks, and records them as a listing ("upload").
"""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import accept_agreement, events
from tests.conftest import login
from vault.models import Role


def test_the_upload_form_offers_only_customers_worked_and_records_whom_it_names(api: Any, rt: Any, users: Any,
                                                                                  org: dict[str, int]) -> None:
    users.make("cora", Role.COMPILER)
    own = api.customer("Cora Direkt", user="cora", shared=False)
    assert api.get("/api/v1/customers/lookup?q=iberica", "cora").status_code == 200  # a day's sight of Eva's
    accept_agreement(rt, "cora")
    client = api.app.test_client()
    login(client, "cora")
    before = [e.seq for e in events(rt, "customer:list")]
    page = client.get("/documents/new")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Cora Direkt" in text
    assert "Ibérica Logística" not in text and "Nordlicht Handel" not in text
    listed = [e for e in events(rt, "customer:list") if e.seq not in before]
    assert [(e.actor_name, json.loads(e.detail).get("listing"), json.loads(e.detail).get("ids")) for e in listed] == [
        ("cora", "upload", [own])]


def test_an_upload_form_that_names_nobody_records_nothing(api: Any, rt: Any, users: Any) -> None:
    users.make("cora", Role.COMPILER)
    accept_agreement(rt, "cora")
    client = api.app.test_client()
    login(client, "cora")
    assert client.get("/documents/new").status_code == 200
    assert [e for e in events(rt, "customer:list") if e.actor_name == "cora"] == []
