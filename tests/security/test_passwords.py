"""Password rules (length, the shipped list of common passwords, the user name) and rehashing on sign-in."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters

from tests.conftest import PASSWORD, login
from tests.security.helpers import events, flashes, location, post_form
from vault.core.errors import ServiceError
from vault.core.passwords import MIN_LENGTH, Passwords
from vault.models import Role
from vault.services import accounts


def _code(password, username=None):
    try:
        accounts.check_password_rules(password, username)
    except ServiceError as exc:
        return exc.code
    return "ok"


def test_the_shipped_list_is_large_and_holds_the_usual_suspects():
    listed = accounts._common_passwords()
    assert len(listed) > 10_000
    for classic in ["123456", "password", "qwerty", "iloveyou", "letmein", "monkey", "dragon", "abc123",
                    "trustno1", "1qaz2wsx", "qwertyuiop", "password123", "welcome2024", "1234567890"]:
        assert classic in listed, classic
    assert all(entry == entry.strip().lower() and entry for entry in listed)
    assert PASSWORD not in listed


@pytest.mark.parametrize("password", ["Password1234", "PASSWORD1234", "QwertyUiop", "iloveyou123", "1234567890",
                                      "Welcome2024!", "  password1234  ", "1q2w3e4r5t6y"])
def test_common_passwords_are_refused_whatever_their_case(password):
    assert _code(password) == "common_password"


@pytest.mark.parametrize(("password", "username"), [("annabelle-2024-x", "annabelle"),
                                                     ("my ANNABELLE pass", "annabelle"),
                                                     ("x.y.j.smith.z.q", "j.smith")])
def test_passwords_containing_the_user_name_are_refused(password, username):
    assert _code(password, username) == "password_contains_username"


def test_short_passwords_are_refused():
    assert _code("a" * (MIN_LENGTH - 1)) == "weak_password"
    assert _code("tr0ub4dor&3 staple") == "ok"
    assert _code(PASSWORD, "ann") == "ok"


def test_account_creation_applies_the_rules(rt):
    with rt.db.session() as session, pytest.raises(ServiceError) as raised:
        accounts.create_user(rt, session, username="ann", password="Password123")
    assert raised.value.code == "common_password"
    with rt.db.session() as session, pytest.raises(ServiceError) as raised:
        accounts.create_user(rt, session, username="annabelle", password="annabelle rocks!")
    assert raised.value.code == "password_contains_username"
    with rt.db.session() as session:
        assert accounts.find_user(session, "ann") is None


def test_password_change_applies_the_rules_and_asks_the_current_one(client, users, rt):
    users.make("ann", Role.BORROWER)
    login(client, "ann")
    common = post_form(client, "/account", "/account/password", current=PASSWORD, new="iloveyou123",
                       confirm="iloveyou123")
    assert location(common) == "/account"
    assert ("error", "This password is on the list of common passwords; choose another.") in flashes(
        client.get("/account"))
    wrong = post_form(client, "/account", "/account/password", current="not the password",
                      new="a fine long passphrase", confirm="a fine long passphrase")
    assert location(wrong) == "/account"
    assert [e.reason_code for e in events(rt, "account:password", "denied")] == ["bad_credentials"]
    differ = post_form(client, "/account", "/account/password", current=PASSWORD,
                       new="a fine long passphrase", confirm="another long passphrase")
    assert location(differ) == "/account"
    assert events(rt, "account:password", "allowed") == []
    login(client.application.test_client(), "ann")  # the old password still works


def test_hash_is_upgraded_at_sign_in_when_parameters_change(client, users, rt):
    users.make("ann", Role.BORROWER)
    with rt.db.session() as session:
        before = accounts.get_user(session, "ann").password_hash
    assert (extract_parameters(before).time_cost, extract_parameters(before).memory_cost) == (1, 1024)
    # The deployment raises the Argon2 cost: the next sign-in re-hashes with the new parameters.
    rt.passwords = Passwords(time_cost=2, memory_kib=2048)
    login(client, "ann")
    with rt.db.session() as session:
        after = accounts.get_user(session, "ann").password_hash
    assert after != before
    assert (extract_parameters(after).time_cost, extract_parameters(after).memory_cost) == (2, 2048)
    assert rt.passwords.verify(after, PASSWORD)
    # A wrong password does not re-hash anything.
    rt.passwords = Passwords(time_cost=3, memory_kib=4096)
    post_form(client.application.test_client(), "/login", username="ann", password="not the password")
    with rt.db.session() as session:
        assert accounts.get_user(session, "ann").password_hash == after
