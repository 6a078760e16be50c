"""The new owner's side of a rotation through the API, on both databases: the customers rotated to the caller
are listed until the contact is confirmed, a confirmation needs the contact logged first, and only the new
owner (still owning the customer) confirms, once; refusals are the page's and change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from tests.support.factories import reach_main_contact
from vault.models import Customer, ProposalStatus, RotationProposal, Segment, utcnow

TASKS = "/api/v1/rotations/tasks"


def _confirm_path(proposal_id: int) -> str:
    return f"/api/v1/rotations/{proposal_id}/confirm"


@pytest.fixture
def rotated(api: Any, rt: Any, cast: dict[str, Any]) -> dict[str, int]:
    """Written straight to the database (the plan's rules are tested on their own): Acme went from bob to
    bea; Brill too, but has since gone to carl; Cedar is only proposed to bea."""
    bob, bea, ann = cast["bob"].id, cast["bea"].id, cast["ann"].id
    ids = {name: api.customer(name, owner="bob", shared=False) for name in ("Acme", "Brill", "Cedar")}
    with rt.db.session() as session:
        session.get(Customer, ids["Acme"]).owner_id = bea
        session.get(Customer, ids["Brill"]).owner_id = cast["carl"].id
        proposals = {
            name: RotationProposal(customer_id=ids[name], segment=Segment.KEY, from_user_id=bob,
                                   proposed_user_id=bea, to_user_id=bea, status=status,
                                   decided_at=utcnow() if status == ProposalStatus.APPROVED else None,
                                   decided_by_id=ann if status == ProposalStatus.APPROVED else None)
            for name, status in (("Acme", ProposalStatus.APPROVED), ("Brill", ProposalStatus.APPROVED),
                                 ("Cedar", ProposalStatus.OPEN))}
        session.add_all(proposals.values())
        session.flush()
        return {**{f"{name}_customer": customer for name, customer in ids.items()},
                **{name: proposal.id for name, proposal in proposals.items()}}


def test_the_new_owner_lists_and_confirms_after_logging_the_contact(api, rt, cast, rotated):
    [task] = api.get(TASKS, "bea").get_json()["tasks"]  # Brill is no longer hers, Cedar only proposed
    assert task["id"] == rotated["Acme"] and task["customer"] == {
        "id": rotated["Acme_customer"], "name": "Acme", "segment": "key"}
    assert task["previous_owner"]["username"] == "bob" and task["decided_at"]
    assert (task["confirmed_at"], task["note"]) == (None, None)
    assert api.get(TASKS, "bob").get_json() == {"tasks": []}
    # Not before the contact is logged (no body is needed: the note is optional).
    assert_error(api.post(_confirm_path(rotated["Acme"]), "bea"), 403, "contact_not_logged")
    reach_main_contact(rt, rotated["Acme_customer"], "bea")
    confirmed = api.post(_confirm_path(rotated["Acme"]), "bea", json={"note": "Met the buyer"})
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["confirmed_at"] and confirmed.get_json()["note"] == "Met the buyer"
    assert api.get(TASKS, "bea").get_json() == {"tasks": []}
    [record] = events(rt, "rotation:confirm")
    assert (record.actor_name, record.customer_id, record.subject_user_id, record.reason_text) == (
        "bea", rotated["Acme_customer"], cast["bob"].id, "Met the buyer")
    # Once only.
    assert_error(api.post(_confirm_path(rotated["Acme"]), "bea", json={}), 403, "already_confirmed")
    assert [e.reason_code for e in events(rt, "rotation:confirm", "denied")] == [
        "contact_not_logged", "already_confirmed"]


def test_only_the_new_owner_confirms_and_refusals_change_nothing(api, rt, cast, rotated):
    acme = _confirm_path(rotated["Acme"])
    reach_main_contact(rt, rotated["Acme_customer"], "bea")
    # Not the new owner's, or not (yet) a rotation: as unknown as a made-up id.
    for person, path in (("bob", acme), ("carl", acme), ("ann", acme), ("bea", _confirm_path(rotated["Cedar"])),
                         ("bea", _confirm_path(999999))):
        assert_error(api.post(path, person, json={"note": "Called them"}), 404, "not_found")
    # Brill has since gone to carl: the task is no longer bea's to confirm.
    assert_error(api.post(_confirm_path(rotated["Brill"]), "bea"), 403, "no_longer_owner")
    # Bad bodies.
    for body in ({"note": 5}, {"note": "x" * 2001}, {"comment": "hi"}, ["note"]):
        assert_error(api.post(acme, "bea", json=body), 422, "invalid_request")
    # Roles that never own customers.
    for person in ("aud", "adm"):
        assert_error(api.get(TASKS, person), 403, "not_permitted")
        assert_error(api.post(acme, person), 403, "not_permitted")
    assert events(rt, "rotation:confirm") == []
    with rt.db.session() as session:
        assert session.get(RotationProposal, rotated["Acme"]).confirmed_at is None
    assert [t["id"] for t in api.get(TASKS, "bea").get_json()["tasks"]] == [rotated["Acme"]]
