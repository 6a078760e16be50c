"""Failed sign-ins are counted per account and per address, in the database, and lock out for a while."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_from, login, make_runtime
from tests.security.helpers import events, flashes, location, password_step, without_csrf
from vault import create_app
from vault.core.context import AccessContext
from vault.core.passwords import Passwords
from vault.models import LoginAttempt, Role, utcnow
from vault.services import signin, throttle

GENERIC = "Wrong user name or password. After repeated failures, signing in is paused for a while."


@pytest.fixture
def settings_overrides():
    return {"login_max_failures": 3, "login_address_max_failures": 6, "login_window_minutes": 15,
            "login_lockout_minutes": 10}


def _from(client, address):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _wait_out_the_lockout(clock):
    clock.advance(timedelta(minutes=10, seconds=1))  # login_lockout_minutes above


def test_an_account_locks_after_its_failures_wherever_they_come_from(app, users, rt, clock):
    users.make("ann", Role.BORROWER)
    # Three failures from three addresses: the per-address counts stay low, the account's reaches 3.
    for number, address in enumerate(["10.0.0.1", "10.0.0.2", "10.0.0.3"], 1):
        response = password_step(_from(app.test_client(), address), "ann", "wrong password " + str(number))
        assert response.status_code == 200
    lockouts = events(rt, "auth:lockout")
    assert [(e.actor_name, e.subject_user_id is not None, e.reason_code) for e in lockouts] == [
        ("ann", True, "locked")]
    assert lockouts[0].client_addr == "10.0.0.3"

    # The right password from a fresh address is refused now, with the same words as a wrong one.
    client = _from(app.test_client(), "10.0.0.4")
    response = password_step(client, "ann")
    assert response.status_code == 200
    assert ("error", GENERIC) in flashes(response)
    assert client.get("/").status_code == 302
    denied = events(rt, "auth:login", "denied")
    assert [e.reason_code for e in denied] == ["bad_credentials"] * 3 + ["locked"]
    assert events(rt, "auth:login", "allowed") == []

    # Once the lockout is over, the right password works and the count starts again from zero.
    _wait_out_the_lockout(clock)
    login(client, "ann")
    with rt.db.session() as session:
        assert session.get(LoginAttempt, "user:ann") is None


def test_failures_within_the_limit_are_forgotten_after_a_success(app, users, rt):
    users.make("ann", Role.BORROWER)
    client = app.test_client()
    for _ in range(2):
        password_step(client, "ann", "wrong password!")
    login(client, "ann")
    client = app.test_client()
    for _ in range(2):
        password_step(client, "ann", "wrong password!")
    login(client, "ann")
    assert events(rt, "auth:lockout") == []


def test_an_address_is_throttled_across_names_then_released(app, users, rt, clock):
    users.make("ann", Role.BORROWER)
    attacker = _from(app.test_client(), "192.0.2.7")
    # Six failures spread over six names (none reaches its own limit) throttle the address.
    for name in ["a1", "a2", "a3", "a4", "a5", "a6"]:
        password_step(attacker, name, "guess guess guess")
    lockouts = events(rt, "auth:lockout")
    assert [(e.reason_code, e.client_addr) for e in lockouts] == [("throttled", "192.0.2.7")]
    assert lockouts[0].detail == '{"key":"address","minutes":10}'

    # From that address even a right password is refused (audited as throttled)...
    response = password_step(attacker, "ann")
    assert ("error", GENERIC) in flashes(response)
    assert events(rt, "auth:login", "denied")[-1].reason_code == "throttled"
    # ...while the same person elsewhere signs in.
    login(_from(app.test_client(), "198.51.100.1"), "ann")
    _wait_out_the_lockout(clock)
    login(attacker, "ann")


def test_unknown_wrong_and_locked_get_the_same_page_and_the_same_work(app, users, rt):
    """No message, status or amount of password hashing tells an unknown name from a real one."""
    users.make("ann", Role.BORROWER)
    users.make("bob", Role.BORROWER)

    class CountingPasswords(Passwords):
        verifications = 0

        def verify(self, stored, password):
            CountingPasswords.verifications += 1
            return super().verify(stored, password)

    rt.passwords = CountingPasswords(time_cost=1, memory_kib=1024)
    for _ in range(3):
        password_step(_from(app.test_client(), "10.9.0.1"), "bob", "not his password")  # bob is locked now

    answers = {}
    for label, name, password in [("unknown", "nobody", PASSWORD), ("wrong", "ann", "not her password"),
                                  ("locked", "bob", PASSWORD)]:
        client = _from(app.test_client(), "10.9.0.2")
        before = CountingPasswords.verifications
        response = password_step(client, name, password)
        page = without_csrf(response.get_data(as_text=True)).replace(f'value="{name}"', 'value="NAME"')
        answers[label] = (response.status_code, page)
        # One Argon2 verification each: the clock cannot tell the cases apart either.
        assert CountingPasswords.verifications - before == 1, label
    assert answers["unknown"] == answers["wrong"] == answers["locked"]
    assert answers["wrong"][0] == 200
    assert GENERIC in answers["wrong"][1]
    reasons = [(e.actor_name, e.reason_code) for e in events(rt, "auth:login", "denied")][-3:]
    assert reasons == [("nobody", "bad_credentials"), ("ann", "bad_credentials"), ("bob", "locked")]


def test_unknown_names_lock_out_like_real_ones(app, rt):
    client = app.test_client()
    for _ in range(3):
        password_step(client, "ghost", "whatever it is")
    lockouts = events(rt, "auth:lockout")
    assert [(e.actor_name, e.actor_id, e.reason_code) for e in lockouts] == [("ghost", None, "locked")]
    password_step(client, "ghost", "whatever it is")
    assert events(rt, "auth:login", "denied")[-1].reason_code == "locked"


def test_wrong_second_factor_codes_count_towards_the_lockout(app, users, rt):
    users.make("val", Role.APPROVER)
    client = app.test_client()
    assert location(password_step(client, "val")) == "/"
    assert location(client.get("/")) == "/login/code"
    for attempt in range(3):
        token = csrf_from(client.get("/login/code").get_data(as_text=True))
        response = client.post("/login/code", data={"code": "000000", "csrf_token": token})
        if attempt < 2:
            assert response.status_code == 200
    # The third wrong code locks the account: the half-made session ends and sign-in is refused.
    assert location(response) == "/login"
    assert [e.reason_code for e in events(rt, "auth:lockout")] == ["locked"]
    assert client.get("/").status_code == 302 and "/login" in location(client.get("/"))
    assert ("error", GENERIC) in flashes(password_step(client, "val"))


def test_counters_are_shared_by_every_worker(app, users, rt, tmp_path, database_url, keyring_path):
    """Two runtimes on one database (two gunicorn workers) add up their counts."""
    users.make("ann", Role.BORROWER)
    other = make_runtime(tmp_path / "other", database_url, keyring_path, login_max_failures=3)
    try:
        second = create_app(runtime=other)
        second.config["TESTING"] = True
        password_step(app.test_client(), "ann", "wrong one here")
        password_step(second.test_client(), "ann", "wrong two here")
        password_step(app.test_client(), "ann", "wrong three here")
        assert [e.reason_code for e in events(rt, "auth:lockout")] == ["locked"]
        password_step(second.test_client(), "ann")
        assert events(rt, "auth:login", "denied")[-1].reason_code == "locked"
    finally:
        other.close()


def test_concurrent_failures_are_all_counted(rt, users):
    """Failures racing in parallel transactions lose no count (the row is locked while bumped)."""
    users.make("ann", Role.BORROWER)
    threads, errors = [], []

    def fail(number):
        try:
            for _ in range(3):
                with rt.db.session() as session:
                    ctx = AccessContext(client_addr=f"10.1.0.{number}")
                    assert signin.authenticate(rt, session, "ann", "wrong password", ctx) is None
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    rt.settings = dataclasses.replace(rt.settings, login_max_failures=1000)
    for number in range(6):
        threads.append(threading.Thread(target=fail, args=(number,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with rt.db.session() as session:
        assert session.get(LoginAttempt, "user:ann").failures == 18
        assert len(list(session.scalars(select(LoginAttempt).where(LoginAttempt.key.like("addr:%"))))) == 6


def test_old_counters_are_purged(rt):
    old = utcnow() - timedelta(hours=2)
    with rt.db.session() as session:
        session.add(LoginAttempt(key="user:old", window_start=old, failures=2))
        session.add(LoginAttempt(key="user:locked", window_start=old, failures=0,
                                 locked_until=utcnow() + timedelta(minutes=5)))
    with rt.db.session() as session:
        throttle.record_failure(session, rt.settings, "new", "10.0.0.1")
    with rt.db.session() as session:
        keys = set(session.scalars(select(LoginAttempt.key)))
    assert keys == {"user:locked", "user:new", "addr:10.0.0.1"}


def test_wrong_codes_after_a_right_password_lock_the_account(app, users, rt):
    """Finding 2: a right password must not wipe the count before the second factor succeeds."""
    users.make("val", Role.APPROVER)
    for _ in range(3):
        client = app.test_client()
        assert location(password_step(client, "val")) == "/"
        token = csrf_from(client.get("/login/code").get_data(as_text=True))
        client.post("/login/code", data={"code": "000000", "csrf_token": token})
    assert [e.reason_code for e in events(rt, "auth:lockout")] == ["locked"]
    # Locked now: even the right password and a right code do not sign in.
    client = app.test_client()
    response = password_step(client, "val")
    assert ("error", GENERIC) in flashes(response)
    assert client.get("/").status_code == 302


def test_a_second_factor_success_clears_the_count(app, users, rt):
    users.make("val", Role.APPROVER)
    for _ in range(2):
        client = app.test_client()
        password_step(client, "val")
        token = csrf_from(client.get("/login/code").get_data(as_text=True))
        client.post("/login/code", data={"code": "000000", "csrf_token": token})
    login(app.test_client(), "val")
    with rt.db.session() as session:
        assert session.get(LoginAttempt, "user:val") is None
