"""`vault init`, `vault user add`, `vault token ...`, and the refusal to start with an unsafe keyring."""

from __future__ import annotations

import os
import socket

import pytest
from click.testing import CliRunner

from crypto import KeyringError
from vault import create_app
from vault.cli import cli


@pytest.fixture
def env(tmp_path):
    return {"VAULT_DATA_DIR": str(tmp_path / "data"), "VAULT_ARGON2_TIME_COST": "1",
            "VAULT_ARGON2_MEMORY_KIB": "1024"}


def run(env, *args, input=None):
    result = CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
    return result


def test_init_is_idempotent_and_private(env, tmp_path):
    first = run(env, "init")
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    second = run(env, "init")
    assert second.exit_code == 0 and "created" not in second.output
    data = tmp_path / "data"
    assert (data / "keyring.json").stat().st_mode & 0o777 == 0o600
    assert data.stat().st_mode & 0o077 == 0
    assert (data / "vault.db").exists() and (data / "objects").is_dir()


def test_user_add_and_token_lifecycle(env):
    run(env, "init")
    added = run(env, "user", "add", "alice", "--role", "borrower", "--password-stdin",
                input="a long enough passphrase 42\n")
    assert added.exit_code == 0, added.output
    conflict = run(env, "user", "add", "root1", "--role", "admin", "--role", "auditor", "--password-stdin",
                   input="another long passphrase 42\n")
    assert conflict.exit_code != 0 and "administrator holds no other role" in conflict.output
    created = run(env, "token", "create", "alice")
    assert created.exit_code == 0
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("vt_")
    revoked = run(env, "token", "revoke", "alice")
    assert "revoked 1 token" in revoked.output
    listing = run(env, "user", "list")
    assert "alice" in listing.output and "borrower" in listing.output


def test_token_create_takes_an_expiry_and_a_scope(env):
    run(env, "init")
    run(env, "user", "add", "sync", "--role", "borrower", "--password-stdin", input="a long enough passphrase 42\n")
    made = run(env, "token", "create", "sync", "--expires", "7d", "--scope", "read")
    assert made.exit_code == 0, made.output
    assert "scope read" in made.output and made.output.strip().splitlines()[-1].startswith("vt_")
    too_long = run(env, "token", "create", "sync", "--expires", "91d")
    assert too_long.exit_code != 0 and "must expire within 90 days" in too_long.output
    bad = run(env, "token", "create", "sync", "--expires", "soon")
    assert bad.exit_code != 0 and "like 12h or 30d" in bad.output


def test_the_app_refuses_to_start_when_the_keyring_is_readable_by_others(env, tmp_path, monkeypatch):
    run(env, "init")
    keyring = tmp_path / "data" / "keyring.json"
    os.chmod(keyring, 0o644)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(KeyringError, match="chmod 600"):
        create_app()
    os.chmod(keyring, 0o600)
    assert create_app() is not None


def test_commands_without_init_say_what_to_do(env):
    result = run(env, "user", "list")
    assert result.exit_code != 0 and "vault init" in result.output


def _actor_names(env, action):
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{env['VAULT_DATA_DIR']}/vault.db")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT actor_name FROM audit_events WHERE action = :a ORDER BY seq"),
                                  {"a": action}).all()
    engine.dispose()
    return [row[0] for row in rows]


def test_the_command_line_records_its_operator_by_name(env):
    from vault.core.context import operator_name

    run(env, "init")
    named = run(env, "--operator", "Dana Ops", "user", "add", "alice", "--role", "borrower", "--password-stdin",
                input="a long enough passphrase 42\n")
    assert named.exit_code == 0, named.output
    unnamed = run(env, "user", "add", "bruno", "--role", "borrower", "--password-stdin",
                  input="another long passphrase 42\n")
    assert unnamed.exit_code == 0, unnamed.output
    # Never "system": the person at the server, as they said, or the OS account they used.
    assert _actor_names(env, "user:create") == ["cli:Dana Ops", operator_name()]
    assert run(env, "--operator", "", "user", "list").exit_code != 0
    assert run(env, "--operator", "x" * 65, "user", "list").exit_code != 0


def test_policy_show_prints_a_file_that_reads_back_the_same(env, tmp_path):
    import tomllib

    from vault.config.settings import load_settings

    policy = tmp_path / "policy.toml"
    policy.write_text('[alerts]\ncustomers_per_day = 7\n[working_hours]\nstart = "07:30"\nend = 24\n'
                      '[departure]\non_notice = "refuse"\n[grades.3]\nviews = 2\n', encoding="utf-8")
    shown = run({**env, "VAULT_CONFIG": str(policy)}, "policy", "show")
    assert shown.exit_code == 0, shown.output
    again = load_settings({"policy": tomllib.loads(shown.output)}, environ={})
    original = load_settings({"config": policy}, environ={})
    assert again.policy_sections() == original.policy_sections()
    assert again.alerts.customers_per_day == 7 and again.grade(3).views == 2
    assert again.departure.on_notice == "refuse"


def test_policy_show_prints_every_key_so_each_changed_value_reads_back(env, tmp_path):
    """A key missing from the printout silently falls back to its default when the printout is used as
    the policy file: a tightened rule would loosen again without anyone having chosen it."""
    import tomllib
    from dataclasses import fields

    from vault.config.policy_file import (
        AlertSettings,
        DepartureSettings,
        PoolSettings,
        RecordSettings,
        RotationSettings,
    )
    from vault.config.settings import load_settings

    policy = tmp_path / "policy.toml"
    policy.write_text('[departure]\nnotice_grade1_daily_cap = 3\nlookback_days = 90\n'
                      '[records]\nreveals_vip = 1\n[rotation]\nmin_tenure_months = 9\n'
                      '[pool]\nmax_claims_vip = 1\n', encoding="utf-8")
    shown = run({**env, "VAULT_CONFIG": str(policy)}, "policy", "show")
    assert shown.exit_code == 0, shown.output
    printed = tomllib.loads(shown.output)
    for section, kind in (("alerts", AlertSettings), ("departure", DepartureSettings),
                          ("records", RecordSettings), ("rotation", RotationSettings), ("pool", PoolSettings)):
        assert set(printed[section]) == {f.name for f in fields(kind)}, section
    assert set(printed["working_hours"]) == {"timezone", "days", "start", "end"}
    again = load_settings({"policy": printed}, environ={})
    original = load_settings({"config": policy}, environ={})
    assert again.departure == original.departure and again.departure.notice_grade1_daily_cap == 3
    assert (again.records, again.rotation, again.pool, again.alerts, again.grades, again.working_hours) == (
        original.records, original.rotation, original.pool, original.alerts, original.grades,
        original.working_hours)


def test_maintenance_run_reports_what_it_did(env):
    run(env, "init")
    result = run(env, "maintenance", "run")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("expired 0 loan(s); refunded 0 unused view(s); "
                                     "last-day steps for 0 departure(s)")


@pytest.fixture
def taken_port():
    """A port held on every address, so that a server that does start stops at once (address in use)
    instead of serving: the tests see how far `vault run` got without leaving a server behind."""
    ipv4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ipv4.bind(("0.0.0.0", 0))
    ipv4.listen(1)
    port = ipv4.getsockname()[1]
    ipv6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ipv6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    ipv6.bind(("::", port))
    ipv6.listen(1)
    yield port
    ipv4.close()
    ipv6.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "vault.example.com", "localhost.example.com",
                                  "", "128.0.0.1"])
def test_run_refuses_the_debugger_on_an_address_others_reach(env, taken_port, host):
    """`--debug` turns on the interactive debugger, which runs any code typed into an error page; with a
    host others reach it was anyone's shell on the server. Refused as a usage error before anything starts."""
    run(env, "init")
    result = run(env, "run", "--host", host, "--port", str(taken_port), "--debug")
    assert result.exit_code == 2, result.output
    assert "--debug" in result.output and "loopback" in result.output
    assert "in use" not in result.output  # refused before any attempt to listen


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_run_allows_the_debugger_on_loopback(env, taken_port, host):
    """A loopback host passes the check: the server goes on to listen (and stops only because the port
    is taken here)."""
    run(env, "init")
    result = run(env, "run", "--host", host, "--port", str(taken_port), "--debug")
    assert result.exit_code == 1 and "loopback" not in result.output


def test_run_without_debug_takes_any_host(env, taken_port):
    run(env, "init")
    result = run(env, "run", "--host", "0.0.0.0", "--port", str(taken_port))
    assert result.exit_code == 1 and "loopback" not in result.output
