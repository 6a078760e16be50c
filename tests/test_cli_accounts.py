"""An operator's account lifecycle from the command line, as the admin pages do it: an account whose owner
sets the password through a one-time link, disable (with a reason) and enable, a lost second factor reset,
and the tokens listed by id for `token revoke --id`. Each act audited under the operator's name."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_from, login
from tests.security.helpers import events, location
from vault.cli import cli
from vault.cli.common import column
from vault.core.context import AccessContext, operator_name
from vault.models import PasswordLink, Role, User
from vault.services import accounts, agreement, totp

BASE_URL = "http://vault.example.com"
NEW_PASSWORD = "a passphrase of my own choosing"


def run(rt: Any, *args: str, base_url: str = BASE_URL, input: str | None = None) -> Any:
    """`vault ...` against the test's database and keyring, configured as a deployment is (environment)."""
    settings = rt.settings
    env = {"VAULT_DATA_DIR": str(settings.data_dir), "VAULT_DATABASE_URL": settings.database,
           "VAULT_KEYRING": str(settings.keyring_path), "VAULT_SECRET_KEY": settings.secret_key,
           "VAULT_ARGON2_TIME_COST": "1", "VAULT_ARGON2_MEMORY_KIB": "1024", "VAULT_BASE_URL": base_url}
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def _user(rt: Any, username: str) -> User:
    with rt.db.session() as session:
        return accounts.get_user(session, username)


def _live_links(rt: Any, username: str) -> int:
    with rt.db.session() as session:
        user = accounts.get_user(session, username)
        return len(session.scalars(select(PasswordLink).where(PasswordLink.user_id == user.id,
                                                              PasswordLink.used_at.is_(None))).all())


def test_an_account_made_with_a_link_gets_its_password_from_its_owner(app, rt, users):
    # The path the command line prints is the page's route.
    route = accounts.PASSWORD_SET_PATH.replace("{secret}", "<string(maxlength=100):secret>")
    assert any(rule.rule == route and rule.endpoint == "auth.set_password" for rule in app.url_map.iter_rules())
    added = run(rt, "user", "add", "newbie", "--role", "borrower", "--name", "New Person", "--link")
    assert added.exit_code == 0, added.output
    link = added.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{BASE_URL}/password/set/") and "created newbie" in added.output
    with rt.db.session() as session:
        newbie = accounts.get_user(session, "newbie")
        assert (newbie.display_name, sorted(map(str, newbie.role_set))) == ("New Person", ["borrower"])
        assert not rt.passwords.verify(newbie.password_hash, PASSWORD)  # nobody knows one until the owner sets it
    # Audited as the admin page does it, under the operator's name.
    assert [(e.actor_name, e.subject_user_id) for e in events(rt, "user:create")] == [
        (operator_name(), _user(rt, "newbie").id)]
    [made] = events(rt, "account:password_link")
    assert (made.actor_name, made.subject_user_id, json.loads(made.detail)) == (
        operator_name(), _user(rt, "newbie").id, {"hours": 72, "delivery": "operator"})
    # A new link ends the unused earlier one.
    again = run(rt, "user", "password-link", "newbie")
    assert again.exit_code == 0, again.output
    second = again.stdout.strip().splitlines()[-1]
    assert second.startswith(f"{BASE_URL}/password/set/") and second != link
    assert _live_links(rt, "newbie") == 1 and len(events(rt, "account:password_link")) == 2
    person = app.test_client()
    assert person.get(link.removeprefix(BASE_URL)).status_code == 404
    path = second.removeprefix(BASE_URL)
    form = person.get(path)
    assert form.status_code == 200
    done = person.post(path, data={"csrf_token": csrf_from(form.get_data(as_text=True)), "new": NEW_PASSWORD,
                                   "confirm": NEW_PASSWORD})
    assert location(done) == "/login"
    login(app.test_client(), "newbie", NEW_PASSWORD)
    assert [e.actor_name for e in events(rt, "account:password_set")] == ["newbie"]
    # Without VAULT_BASE_URL: the bare path, and a warning saying what to put before it.
    bare = run(rt, "user", "password-link", "newbie", base_url="")
    assert bare.exit_code == 0, bare.output
    assert bare.stdout.strip().splitlines()[-1].startswith("/password/set/")
    assert "VAULT_BASE_URL is not set" in bare.stderr
    # The password options still work.
    typed = run(rt, "user", "add", "typed", "--role", "borrower", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert typed.exit_code == 0 and "/password/set/" not in typed.output, typed.output
    login(app.test_client(), "typed", NEW_PASSWORD)


def test_link_commands_refuse_what_cannot_work_and_change_nothing(rt, users):
    users.make("gone", Role.BORROWER)
    run(rt, "user", "disable", "gone")
    links_before = len(events(rt, "account:password_link"))
    for args, message in (
        (("user", "add", "both", "--link", "--password-stdin"), "--link or --password-stdin"),
        (("user", "add", "bad name!", "--link"), "A user name is"),
        (("user", "add", "gone", "--link"), "already exists"),
        (("user", "password-link", "nobody"), "No such user"),
        (("user", "password-link", "gone"), "cannot sign in"),
    ):
        result = run(rt, *args, input="whatever it is 42\n")
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    with rt.db.session() as session:
        assert accounts.find_user(session, "both") is None and accounts.find_user(session, "bad name!") is None
    assert len(events(rt, "account:password_link")) == links_before and len(events(rt, "user:create")) == 1


def test_disable_enable_and_tokens_by_id(app, rt, users):
    users.make("sync", Role.BORROWER)
    made = [run(rt, "token", "create", "sync", "--name", name, "--scope", scope).stdout.strip().splitlines()[-1]
            for name, scope in (("nightly", "read"), ("importer", "write"))]
    with rt.db.session() as session:
        from_service = [(t.id, t.name) for t in accounts.list_tokens(session, accounts.get_user(session, "sync"))]
    assert [name for _id, name in from_service] == ["importer", "nightly"]
    with rt.db.session() as session:
        agreement.accept(rt, session, accounts.get_user(session, "sync"), AccessContext.cli())
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {made[0]}"}).status_code == 200
    listed = run(rt, "token", "list", "sync")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "scope", "created", "expires", "last", "used"]
    rows = {line.split()[1]: line for line in lines[1:]}
    assert set(rows) == {"nightly", "importer"}
    assert rows["nightly"].split()[0] == str(dict((n, i) for i, n in from_service)["nightly"])
    assert " read " in rows["nightly"] and " write " in rows["importer"]
    assert rows["importer"].rstrip().endswith("never") and not rows["nightly"].rstrip().endswith("never")
    assert all(secret not in listed.output and secret[:10] not in listed.output for secret in made)
    # One token by the id the list gave.
    importer = rows["importer"].split()[0]
    revoked = run(rt, "token", "revoke", "sync", "--id", importer)
    assert revoked.exit_code == 0 and "revoked 1 token" in revoked.output
    assert [line.split()[1] for line in run(rt, "token", "list", "sync").stdout.splitlines()[1:]] == ["nightly"]
    # Disabled with a reason: sessions end and the remaining token stops at once.
    epoch = _user(rt, "sync").session_epoch
    disabled = run(rt, "user", "disable", "sync", "--reason", "  Contract ended early  ")
    assert disabled.exit_code == 0 and "1 token(s) revoked" in disabled.output, disabled.output
    sync = _user(rt, "sync")
    assert sync.disabled and sync.session_epoch == epoch + 1
    [record] = events(rt, "user:disable")
    assert (record.actor_name, record.subject_user_id, record.reason_text) == (
        operator_name(), sync.id, "Contract ended early")
    assert [json.loads(e.detail)["token_id"] for e in events(rt, "token:revoke")] == [
        int(importer), int(rows["nightly"].split()[0])]
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {made[0]}"}).status_code == 401
    assert "sync has no tokens" in run(rt, "token", "list", "sync").output
    # Enabled again (the tokens stay revoked).
    enabled = run(rt, "user", "enable", "sync")
    assert enabled.exit_code == 0 and "sync is enabled" in enabled.output
    assert not _user(rt, "sync").disabled
    assert [(e.actor_name, e.subject_user_id) for e in events(rt, "user:enable")] == [(operator_name(), sync.id)]
    # Refusals: a clear error, nothing recorded.
    for args, message in (
        (("user", "disable", "nobody"), "No such user"),
        (("user", "enable", "nobody"), "No such user"),
        (("user", "disable", "sync", "--reason", "x" * 2001), "at most 2000"),
        (("token", "list", "nobody"), "No such user"),
        (("token", "revoke", "sync", "--id", importer), "No such token"),
        (("token", "revoke", "sync", "--id", "99999999999999999999"), "Invalid value for '--id'"),
        (("token", "revoke", "sync", "--id", "0"), "Invalid value for '--id'"),
    ):
        result = run(rt, *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert not _user(rt, "sync").disabled and len(events(rt, "user:disable")) == 1


def test_reset_second_factor(rt, users):
    users.make("ann", Role.APPROVER, second_factor=True)
    users.make("bea", Role.BORROWER, second_factor=False)
    expected = []
    for name, enrolled, said in (("ann", True, "second factor removed"), ("bea", False, "had no second factor")):
        epoch = _user(rt, name).session_epoch
        reset = run(rt, "user", "reset-2fa", name)
        assert reset.exit_code == 0 and said in reset.output, reset.output
        with rt.db.session() as session:
            person = accounts.get_user(session, name)
            assert not totp.enrolled(session, person) and totp.record(session, person) is None
            assert person.session_epoch == epoch + 1  # signed-in sessions end
            expected.append((operator_name(), person.id, {"had_second_factor": enrolled}))
    assert [(e.actor_name, e.subject_user_id, json.loads(e.detail)) for e in events(rt, "totp:reset")] == expected
    refused = run(rt, "user", "reset-2fa", "nobody")
    assert refused.exit_code != 0 and "No such user" in refused.output
    assert len(events(rt, "totp:reset")) == 2


def test_command_tables_pad_by_terminal_columns():
    assert column("ann", 6) == "ann   "
    assert column("王伟", 6) == "王伟  "  # two columns a character
    assert column("Ольга", 6) == "Ольга "
    assert column("Jose\u0301", 6) == "Jose\u0301  "  # the accent sits on the e
    assert column("上海明珠贸易", 6) == "上海明珠贸易"  # wider than the column: left whole


def test_numbers_and_names_the_command_line_cannot_take_are_usage_errors_not_tracebacks(rt, users):
    """Each of these printed a Python traceback: digits of other scripts ("²" passes `isdigit`, not
    `int`), numbers past what a date or the database holds, a name past its column (PostgreSQL refused
    it mid-command) or with a terminal escape in it (stored, then printed by every report)."""
    users.make("bob", Role.BORROWER)
    for args, message in (
        (("token", "create", "bob", "--expires", "²d"), "like 12h or 30d"),
        (("token", "create", "bob", "--expires", "99999999999999d"), "like 12h or 30d"),
        (("audit", "verify", "--from", "9223372036854775808"), "--from"),
        (("fsck", "--min-age-minutes", "99999999999999999999"), "--min-age-minutes"),
        (("user", "add", "bell", "--link", "--name", "Bell\x07\x1b[31mRed"), "control characters"),
        (("user", "add", "long", "--link", "--name", "N" * 201), "at most 200 characters"),
    ):
        result = run(rt, *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    with rt.db.session() as session:
        assert accounts.find_user(session, "bell") is None and accounts.find_user(session, "long") is None
