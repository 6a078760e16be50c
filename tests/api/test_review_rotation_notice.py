"""A decider on notice and the rotation queue, on both databases: every open proposal names a customer, its
owner and who would take it over, and a manager on notice, who no longer sees the team's customers
(`policy.visibility.sees_team`) and may approve none of them, still listed the team's proposals, pages and
API, and skipped them. Now nobody on notice decides a rotation, approval or skip, nor runs the plan, and so
is listed none (403 `rotation_departing`, each refusal recorded): the listing asks the decision's own rule.
A manager above who is not leaving decides on; a withdrawn notice gives the queue back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from tests.api.test_review_notice_deciders import _withdraw, give_notice
from tests.api.test_rotations import _owner, scene  # noqa: F401  (the fixture)
from tests.conftest import login

CODE = "rotation_departing"


def _names(answer: Any) -> set[str]:
    assert answer.status_code == 200, answer.get_json()
    return {p["customer"]["name"] for p in answer.get_json()["proposals"]}


@pytest.mark.parametrize("decider", ["mia", "ann"], ids=["manager", "approver"])
def test_a_decider_on_notice_is_listed_and_decides_no_rotation(api: Any, rt: Any, app: Any, scene: Any,  # noqa: F811
                                                                decider: str) -> None:
    made = api.post("/api/v1/rotations/propose", "mia").get_json()["proposed"]
    acme = next(p for p in made if p["customer"]["name"] == "Acme")
    assert _names(api.get("/api/v1/rotations", decider)) == {"Acme", "Brill"}
    departure = give_notice(rt, decider)
    listed_before = len(events(rt, "customer:list"))

    answer = assert_error(api.get("/api/v1/rotations", decider), 403, CODE)
    assert "Acme" not in str(answer)
    assert_error(api.post(f"/api/v1/rotations/{acme['id']}/approve", decider, json={"to": "bill"}), 403, CODE)
    assert_error(api.post(f"/api/v1/rotations/{acme['id']}/skip", decider, json={"reason": "Stays with its owner"}),
                 403, CODE)
    assert_error(api.post("/api/v1/rotations/propose", decider, json={}), 403, CODE)
    client = app.test_client()
    csrf = login(client, decider)
    page = client.get("/rotation/")
    assert page.status_code == 403 and b"Acme" not in page.data
    assert client.post(f"/rotation/{acme['id']}/skip", data={
        "csrf_token": csrf, f"s{acme['id']}-confirm": "y", f"s{acme['id']}-reason": "Stays with its owner"},
    ).status_code == 403
    assert 'href="/rotation/"' not in client.get("/").get_data(as_text=True)  # no menu entry either
    assert _owner(rt, scene["acme"]) == "bob"
    refused = [(e.actor_name, e.reason_code) for e in events(rt, "rotation:decide", "denied")]
    assert refused == [(decider, CODE)] * 6
    assert len(events(rt, "customer:list")) == listed_before  # nothing listed, so nothing to record
    assert events(rt, "rotation:skip") == []

    # A decider who is not leaving decides on (mia's proposals are the approver's too, and the reverse).
    other = "ann" if decider == "mia" else "mia"
    assert _names(api.get("/api/v1/rotations", other)) == {"Acme", "Brill"}

    _withdraw(rt, departure)
    assert _names(api.get("/api/v1/rotations", decider)) == {"Acme", "Brill"}
    skipped = api.post(f"/api/v1/rotations/{acme['id']}/skip", decider, json={"reason": "Stays with its owner"})
    assert skipped.status_code == 200 and _owner(rt, scene["acme"]) == "bob"
