"""Letters about a customer's new account manager through the API, on both databases: listed with the
customer to whoever sees it (as on its page), revoked by the new owner, their manager or an administrator,
by nobody else and never twice; every revocation recorded, every refusal the page's."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from vault.models import CustomerCoOwner, CustomerLetter, LetterAnswer, Role, utcnow
from vault.services import accounts, letters, managers


@pytest.fixture
def scene(api: Any, rt: Any, users: Any, cast: dict[str, Any]) -> dict[str, int]:
    """bob owns Acme and is managed by mia; bea co-owns it (sees it, but its letters are not hers). Four
    letters told Acme's contacts about bob: one open, one answered, one expired, one open for the admin (to an
    address a leaver's edit had taken out of the record)."""
    users.make("mia", Role.BORROWER)
    customer = api.customer("Acme", owner="bob", shared=False)
    now = utcnow()
    with rt.db.session() as session:
        managers.set_manager(rt, session, accounts.get_user(session, "bob"), accounts.get_user(session, "mia"),
                             actor=None)
        session.add(CustomerCoOwner(customer_id=customer, user_id=cast["bea"].id))
        made = {}
        for index, name in enumerate(("open", "answered", "expired", "for_admin")):
            letter = CustomerLetter(
                customer_id=customer, cause="rotation", previous_owner_id=cast["carl"].id, new_owner_id=cast["bob"].id,
                change_key="test-change", contact_index=1 if name == "for_admin" else index,
                earlier_address=name == "for_admin",
                contact_label=f"C••• {index}", language="en",
                token_hash=letters.link_hash(letters.new_link(rt.settings.secret_key)),
                created_at=now - timedelta(days=40 if name == "expired" else 1),
                expires_at=now - timedelta(days=10) if name == "expired" else now + timedelta(days=30))
            if name == "answered":
                letter.answered_at, letter.answer = now, LetterAnswer.CONTACTED
            session.add(letter)
            session.flush()
            made[name] = letter.id
    return {"customer": customer, **made}


def _letters(api: Any, customer_id: int, person: str) -> dict[int, tuple[str, bool]]:
    response = api.get(f"/api/v1/customers/{customer_id}", person)
    assert response.status_code == 200, response.get_json()
    return {letter["id"]: (letter["state"], letter["revocable"]) for letter in response.get_json()["letters"]}


def _revoke(letter_id: int) -> str:
    return f"/api/v1/letters/{letter_id}/revoke"


def test_letters_are_listed_with_the_customer_and_revoked_by_the_right_people(api, rt, cast, scene):
    s = scene
    detail = api.get(f"/api/v1/customers/{s['customer']}", "bob").get_json()
    assert [letter["id"] for letter in detail["letters"]] == sorted(
        (s["open"], s["answered"], s["expired"], s["for_admin"]), reverse=True)  # newest first
    first = next(letter for letter in detail["letters"] if letter["id"] == s["answered"])
    assert (first["new_owner"]["username"], first["contact"], first["language"], first["answer"]) == (
        "bob", "C••• 1", "en", "contacted")
    assert {letter["id"]: letter["earlier_address"] for letter in detail["letters"]} == {
        s["open"]: False, s["answered"]: False, s["expired"]: False, s["for_admin"]: True}
    expected = {s["open"]: ("open", True), s["answered"]: ("answered", False), s["expired"]: ("expired", False),
                s["for_admin"]: ("open", True)}
    assert _letters(api, s["customer"], "bob") == expected
    assert _letters(api, s["customer"], "mia") == expected  # the new owner's manager
    assert _letters(api, s["customer"], "bea") == {k: (state, False) for k, (state, _r) in expected.items()}
    # The new owner, and an administrator, revoke an open link; it is then closed to everyone.
    revoked = api.post(_revoke(s["open"]), "bob")
    assert revoked.status_code == 200, revoked.get_json()
    assert (revoked.get_json()["state"], revoked.get_json()["revocable"]) == ("revoked", False)
    assert api.post(_revoke(s["for_admin"]), "adm", json={}).get_json()["state"] == "revoked"
    # An expired link can still be revoked by the owner's manager (nobody can follow it anyway).
    assert api.post(_revoke(s["expired"]), "mia").get_json()["state"] == "revoked"
    assert _letters(api, s["customer"], "bob") == {
        s["open"]: ("revoked", False), s["answered"]: ("answered", False), s["expired"]: ("revoked", False),
        s["for_admin"]: ("revoked", False)}
    recorded = [(e.actor_name, e.customer_id, e.subject_user_id, json.loads(e.detail)["letter_id"])
                for e in events(rt, "letter:revoke")]
    assert recorded == [("bob", s["customer"], cast["bob"].id, s["open"]),
                        ("adm", s["customer"], cast["bob"].id, s["for_admin"]),
                        ("mia", s["customer"], cast["bob"].id, s["expired"])]


def test_letter_refusals_are_the_pages_and_change_nothing(api, rt, cast, scene):
    s = scene
    before = _letters(api, s["customer"], "bob")
    refusals = [
        ("bea", s["open"], 403, "not_letter_owner"),  # sees the customer, but the letter is not hers
        ("ann", s["open"], 404, "not_found"),  # does not see the customer: the letter is not found
        ("bob", s["answered"], 403, "letter_closed"),
        ("bob", 999999, 404, "not_found"),
        ("aud", s["open"], 403, "not_permitted"),
    ]
    for person, letter_id, status, code in refusals:
        assert_error(api.post(_revoke(letter_id), person), status, code)
    for body in ({"reason": "wrong person"}, ["x"]):
        assert_error(api.post(_revoke(s["open"]), "bob", json=body), 422, "invalid_request")
    assert_error(api.post(_revoke(s["open"]), "bob", data="x=1"), 415, "json_required")
    assert _letters(api, s["customer"], "bob") == before
    assert events(rt, "letter:revoke") == []
    assert [(e.actor_name, e.reason_code) for e in events(rt, "letter:revoke", "denied")] == [
        (person, code) for person, _l, _s, code in refusals]
    # A customer the caller does not see shows no letters: it is not found at all.
    assert_error(api.get(f"/api/v1/customers/{s['customer']}", "kim"), 404, "not_found")


def test_a_letter_of_a_customer_one_does_not_see_is_not_found_as_a_missing_one_is(api, rt, cast, scene):
    """A letter's id names its customer: someone who may not see the customer (kim) must not learn that a
    letter id exists from a 403 where a made-up id answers 404. Someone who sees the customer (bea, its
    co-owner) keeps the 403 that says why. Every refusal is recorded, the hidden one with its customer."""
    s = scene
    hidden = api.post(_revoke(s["open"]), "kim")
    missing = api.post(_revoke(999999), "kim")
    assert_error(hidden, 404, "not_found")
    assert (hidden.status_code, hidden.get_json()) == (missing.status_code, missing.get_json())
    assert_error(api.post(_revoke(s["answered"]), "kim"), 404, "not_found")  # closed or open, the same
    assert_error(api.post(_revoke(s["open"]), "bea"), 403, "not_letter_owner")
    assert _letters(api, s["customer"], "bob")[s["open"]] == ("open", True)
    assert events(rt, "letter:revoke") == []
    refused = [(e.actor_name, e.reason_code, e.customer_id) for e in events(rt, "letter:revoke", "denied")]
    assert refused == [("kim", "not_found", s["customer"]), ("kim", "not_found", None),
                       ("kim", "not_found", s["customer"]), ("bea", "not_letter_owner", s["customer"])]
