"""Settings: typos are errors at start-up, values are checked, the TOML file changes the grade table."""

from __future__ import annotations

import ipaddress
from dataclasses import fields

import pytest

from storage import S3Store
from vault.config.settings import (
    DEFAULT_GRADES,
    RANGES,
    ConfigError,
    Settings,
    ensure_secret_key,
    load_settings,
    parse_trusted_places,
)
from vault.runtime import make_store
from vault.web.places import named_place


def test_defaults_are_the_embedded_product():
    settings = load_settings(environ={})
    assert settings.storage == "local"
    assert settings.database.startswith("sqlite:///") and settings.database.endswith("vault-data/vault.db")
    assert settings.grade(3).release_required and not settings.grade(3).download
    assert settings.grade(1).views == 10 and settings.grade(2).views == 3


def test_an_unknown_variable_is_an_error_not_a_silent_default():
    with pytest.raises(ConfigError, match="VAULT_S3_SECUR"):
        load_settings(environ={"VAULT_S3_SECUR": "false"})


def test_where_helper_programs_live_is_accepted_but_not_a_setting():
    """LibreOffice, the fonts and the test browser are found through their own variables; setting one
    must not stop start-up (it did: `VAULT_SOFFICE` was read by the renderer and refused here)."""
    settings = load_settings(environ={"VAULT_SOFFICE": "/opt/lo/soffice", "VAULT_FONT_DIR": "/srv/fonts",
                                      "VAULT_CHROMIUM": "/usr/bin/chromium"})
    assert settings.storage == "local"


@pytest.mark.parametrize(("name", "value"), [
    ("VAULT_S3_SECURE", "maybe"), ("VAULT_MAX_UPLOAD_MB", "ten"), ("VAULT_STORAGE", "ftp"),
    ("VAULT_CONTENT_URL_SECONDS", "600"), ("VAULT_LOG_LEVEL", "LOUD"), ("VAULT_TRUSTED_PLACES", "Office"),
    ("VAULT_TRUSTED_PLACES", "Office=10.0.0.0/33"),
])
def test_malformed_values_are_refused(name, value):
    with pytest.raises(ConfigError):
        load_settings(environ={name: value})


def test_s3_needs_its_endpoint_and_keys():
    with pytest.raises(ConfigError, match="VAULT_S3_ENDPOINT"):
        load_settings(environ={"VAULT_STORAGE": "s3"})
    settings = load_settings(environ={"VAULT_STORAGE": "s3", "VAULT_S3_ENDPOINT": "127.0.0.1:9000",
                                      "VAULT_S3_ACCESS_KEY": "a", "VAULT_S3_SECRET_KEY": "b",
                                      "VAULT_S3_SECURE": "false"})
    assert settings.s3_secure is False


_S3 = {"VAULT_STORAGE": "s3", "VAULT_S3_ENDPOINT": "127.0.0.1:9000", "VAULT_S3_ACCESS_KEY": "a",
       "VAULT_S3_SECRET_KEY": "b"}


def test_the_s3_key_prefix_is_given_to_the_store_the_app_and_every_command_use():
    """Was: no setting for it, so a bucket shared with another application was vault's whole (`vault fsck
    --repair` aborted the other's idle uploads). Now the store built from the settings keeps to it."""
    assert load_settings(environ=_S3).s3_prefix == ""
    assert make_store(load_settings(environ=_S3)).key_prefix == ""
    store = make_store(load_settings(environ={**_S3, "VAULT_S3_PREFIX": "apps/vault/"}))
    assert isinstance(store, S3Store) and store.key_prefix == "apps/vault/"
    assert "under 'apps/vault/'" in store.describe()


@pytest.mark.parametrize("prefix", ["vault", "/vault/", "a//b/", "../vault/", "vault/../", "a\\b/", "v\x00/"])
def test_an_s3_key_prefix_that_is_not_a_folder_of_the_bucket_stops_the_start_up(prefix: str):
    # "vault" alone would also take in "vault-backups/...": only a whole folder is vault's own.
    with pytest.raises(ConfigError, match="VAULT_S3_PREFIX"):
        load_settings(environ={**_S3, "VAULT_S3_PREFIX": prefix})


def test_trusted_places_are_parsed_and_matched():
    places = parse_trusted_places("Head office=10.1.0.0/16,10.2.0.0/16;Branch=192.168.5.0/24")
    assert [p.name for p in places] == ["Head office", "Branch"]
    assert places[0].networks[1] == ipaddress.ip_network("10.2.0.0/16")
    assert named_place("10.2.3.4", places) == "Head office"
    assert named_place("192.168.5.77", places) == "Branch"
    assert named_place("192.168.6.1", places) is None
    assert named_place("not an address", places) is None
    assert named_place("::1", places) is None


def test_toml_file_changes_grades_and_rejects_unknown_keys(tmp_path):
    good = tmp_path / "vault.toml"
    good.write_text('[grades.3]\napprovals = 2\nviews = 2\n\n[departure]\non_notice = "refuse"\n')
    settings = load_settings(environ={"VAULT_CONFIG": str(good)})
    assert settings.grade(3).approvals == 2 and settings.grade(3).views == 2
    assert settings.grade(2) == DEFAULT_GRADES[2]
    assert settings.departure.on_notice == "refuse"

    for text, message in [
        ("[grades.3]\napprovels = 2\n", "approvels"),
        ("[grade]\nx = 1\n", "unknown section"),
        ("[grades.4]\nviews = 1\n", "grades.4"),
        ("[grades.2]\napprovals = 0\n", "at least one approval"),
        ("not toml at all [", "vault.toml"),
    ]:
        good.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(environ={"VAULT_CONFIG": str(good)})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"VAULT_CONFIG": str(tmp_path / "missing.toml")})


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    settings = ensure_secret_key(load_settings({"data_dir": tmp_path / "data"}, environ={}))
    again = ensure_secret_key(load_settings({"data_dir": tmp_path / "data"}, environ={}))
    assert settings.secret_key == again.secret_key and len(settings.secret_key) > 40
    assert ((tmp_path / "data" / "secret_key").stat().st_mode & 0o077) == 0


def test_a_session_secret_readable_by_others_stops_the_start(tmp_path):
    """Finding 14: with a world-readable secret_key file anyone on the host forged an admin session."""
    settings = ensure_secret_key(load_settings({"data_dir": tmp_path / "data"}, environ={}))
    path = tmp_path / "data" / "secret_key"
    for mode in (0o644, 0o640, 0o602):
        path.chmod(mode)
        with pytest.raises(ConfigError, match="chmod 600"):
            ensure_secret_key(load_settings({"data_dir": tmp_path / "data"}, environ={}))
    path.chmod(0o600)
    assert ensure_secret_key(load_settings({"data_dir": tmp_path / "data"}, environ={})).secret_key == \
        settings.secret_key


def test_the_sqlite_database_is_created_private(tmp_path):
    """Finding 14: vault.db was created world-readable under the usual umask."""
    import os

    from vault.db import schema
    from vault.db.engine import Database

    old = os.umask(0o022)
    try:
        db = Database(f"sqlite:///{tmp_path / 'vault.db'}")
        schema.upgrade(db)
        db.dispose()
    finally:
        os.umask(old)
    assert (tmp_path / "vault.db").stat().st_mode & 0o077 == 0


def test_private_files_are_0600_whatever_the_umask(tmp_path):
    """Finding 14: the writers of audit exports and departure reports share this helper."""
    import os

    from vault.core.private_files import write_private

    target = tmp_path / "report.csv"
    target.write_bytes(b"old")
    target.chmod(0o644)
    old = os.umask(0o000)
    try:
        write_private(target, b"new")
        write_private(tmp_path / "fresh.csv", b"new")
    finally:
        os.umask(old)
    assert [p.stat().st_mode & 0o777 for p in (target, tmp_path / "fresh.csv")] == [0o600, 0o600]
    assert target.read_bytes() == b"new"


def test_the_rotation_section_is_checked_key_by_key(tmp_path):
    assert load_settings(environ={}).rotation.interval("key") == 12
    assert load_settings(environ={}).rotation.interval("vip") == 0
    path = tmp_path / "vault.toml"
    path.write_text("[rotation]\ninterval_vip = 24\ninterval_key = 3\nmin_tenure_months = 9\n")
    rotation = load_settings(environ={"VAULT_CONFIG": str(path)}).rotation
    # Proposed after the interval, never sooner than the minimum tenure; 0 never rotates.
    assert (rotation.due_after("vip"), rotation.due_after("key"), rotation.due_after("ordinary")) == (24, 9, 0)
    for text, message in [
        ("[rotation]\ninterval_gold = 12\n", "interval_gold"),
        ("[rotation]\ninterval_key = -1\n", "interval_key must be a whole number of months"),
        ("[rotation]\ninterval_key = 1.5\n", "interval_key"),
        ("[rotation]\nmin_tenure_months = true\n", "min_tenure_months"),
        ("[rotation]\ninterval_vip = 121\n", "from 0 to 120"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(environ={"VAULT_CONFIG": str(path)})
    # What `vault policy show` prints reads back the same.
    shown = load_settings(environ={}).policy_sections()["rotation"]
    assert shown == {"interval_vip": 0, "interval_key": 12, "interval_ordinary": 0, "min_tenure_months": 6}


def test_the_lookups_section_is_checked_key_by_key(tmp_path):
    """A daily cap of look-ups that a typo left at its default would let a leaver walk the directory."""
    lookups = load_settings(environ={}).lookups
    assert (lookups.per_day, lookups.notice_per_day) == (20, 5)
    path = tmp_path / "vault.toml"
    path.write_text("[lookups]\nper_day = 7\nnotice_per_day = 0\n")
    lookups = load_settings(environ={"VAULT_CONFIG": str(path)}).lookups
    assert (lookups.per_day, lookups.notice_per_day) == (7, 0)
    for text, message in [
        ("[lookups]\nper_week = 3\n", "per_week"),
        ("[lookups]\nper_day = -1\n", "per_day must be a whole number from 0 to 10000"),
        ("[lookups]\nper_day = 10001\n", "per_day"),
        ("[lookups]\nnotice_per_day = 2.5\n", "notice_per_day"),
        ("[lookups]\nnotice_per_day = true\n", "notice_per_day"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(environ={"VAULT_CONFIG": str(path)})
    # What `vault policy show` prints reads back the same.
    assert load_settings(environ={}).policy_sections()["lookups"] == {"per_day": 20, "notice_per_day": 5}


@pytest.mark.parametrize("start", ["²:00", "٠٩:00", "９:00"])
def test_working_hours_take_ascii_digits_only(tmp_path, start):
    """"²:00" passed `isdigit`, then `int` raised a ValueError and the server did not start, with a traceback
    instead of the policy file's error."""
    path = tmp_path / "vault.toml"
    path.write_text(f'[working_hours]\nstart = "{start}"\n')
    with pytest.raises(ConfigError, match="start"):
        load_settings(environ={"VAULT_CONFIG": str(path)})


# Every numeric setting with a value just outside its range, and one that 0 is a good value for.
OUT_OF_RANGE = [
    ("VAULT_MAX_UPLOAD_MB", "0"), ("VAULT_MAX_UPLOAD_MB", "-5"), ("VAULT_PROXY_COUNT", "-1"),
    ("VAULT_PROXY_COUNT", "11"), ("VAULT_CONTENT_URL_SECONDS", "0"), ("VAULT_VIEW_WINDOW_MINUTES", "1441"),
    ("VAULT_ARGON2_TIME_COST", "0"), ("VAULT_ARGON2_TIME_COST", "-3"), ("VAULT_ARGON2_MEMORY_KIB", "0"),
    ("VAULT_ARGON2_MEMORY_KIB", "1023"), ("VAULT_AUDIT_SHARDS", "0"), ("VAULT_AUDIT_CHECKPOINT_EVERY", "0"),
    ("VAULT_AUDIT_CHECKPOINT_EVERY", "-10"), ("VAULT_AUDIT_CHECKPOINT_MINUTES", "0"),
    ("VAULT_AUDIT_CHECKPOINT_MINUTES", "-60"), ("VAULT_AUDIT_RETENTION_DAYS", "0"),
    ("VAULT_AUDIT_RETENTION_DAYS", "-1"), ("VAULT_SESSION_IDLE_MINUTES", "0"),
    ("VAULT_SESSION_ABSOLUTE_HOURS", "0"), ("VAULT_TOKEN_MAX_DAYS", "0"), ("VAULT_TOKEN_MAX_DAYS", "-90"),
    ("VAULT_LOGIN_MAX_FAILURES", "0"), ("VAULT_LOGIN_ADDRESS_MAX_FAILURES", "-1"),
    ("VAULT_LOGIN_WINDOW_MINUTES", "0"), ("VAULT_LOGIN_LOCKOUT_MINUTES", "0"), ("VAULT_LETTER_LINK_DAYS", "0"),
    ("VAULT_LETTER_KEEP_DAYS", "0"), ("VAULT_LETTER_KEEP_DAYS", "3651"),
]


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_numbers_outside_their_range_stop_the_start(name, value):
    """A 0 or negative upload limit, token lifetime or checkpoint interval was taken (the checkpoints quietly
    as 1) although the README promises that a malformed setting stops the start. The message names the
    setting, the value and the range, as the other malformed-value errors do."""
    with pytest.raises(ConfigError, match=rf"^{name} must be between \d+ and \d+, not {value}$"):
        load_settings(environ={name: value})
    # Overrides (embedding, tests) are held to the same ranges.
    with pytest.raises(ConfigError, match=rf"^{name} must be between"):
        load_settings({name[len("VAULT_"):].lower(): int(value)}, environ={})


@pytest.mark.parametrize("value", [True, 2.9])
def test_a_number_override_must_be_a_whole_number(value):
    """int() took True as 1 and cut 2.9 to 2 without a word."""
    with pytest.raises(ConfigError, match="VAULT_TOKEN_MAX_DAYS must be a whole number"):
        load_settings({"token_max_days": value}, environ={})


def test_every_numeric_setting_has_a_range_and_its_ends_are_accepted():
    """No whole-number setting is left without a range; both ends of each one start (0 turns the proxy
    headers off, so it is a good value there)."""
    numeric = {item.name for item in fields(Settings) if item.type in ("int", int)}
    assert numeric == set(RANGES)
    for name, (low, high) in RANGES.items():
        for value in (low, high):
            assert getattr(load_settings(environ={f"VAULT_{name.upper()}": str(value)}), name) == value
    assert load_settings(environ={"VAULT_PROXY_COUNT": "0"}).proxy_count == 0
