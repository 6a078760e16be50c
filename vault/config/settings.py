"""Settings: `VAULT_*` environment variables, an optional TOML policy file, and test overrides.

Unknown keys are an error at start-up, so a typo in a deployment is caught before the first request
instead of silently falling back to a default (a mistyped `VAULT_S3_SECURE` must not mean plain HTTP).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storage.base import validate_prefix
from vault.config.errors import ConfigError
from vault.config.policy_file import (
    DEFAULT_GRADES,
    SECTIONS,
    AlertSettings,
    DepartureSettings,
    GradeRule,
    LookupSettings,
    PoolSettings,
    RecordSettings,
    RotationSettings,
    WorkingHours,
    parse_alerts,
    parse_departure,
    parse_grades,
    parse_lookups,
    parse_pool,
    parse_records,
    parse_rotation,
    parse_working_hours,
    policy_sections,
    zone,
)
from vault.config.smtp import check as check_smtp
from vault.core.languages import LANGUAGES

__all__ = ["RANGES", "ConfigError", "GradeRule", "Settings", "TrustedPlace", "ensure_secret_key", "load_settings"]


@dataclass(frozen=True)
class TrustedPlace:
    name: str
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_trusted_places(text: str) -> tuple[TrustedPlace, ...]:
    """Parse `Head office=10.1.0.0/16,10.2.0.0/16;Branch=192.168.5.0/24`."""
    places: list[TrustedPlace] = []
    for chunk in filter(None, (part.strip() for part in text.split(";"))):
        name, sep, nets = chunk.partition("=")
        if not sep or not name.strip() or not nets.strip():
            raise ConfigError(f"trusted place {chunk!r} is not NAME=CIDR[,CIDR...]")
        try:
            networks = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in nets.split(",") if n.strip())
        except ValueError as exc:
            raise ConfigError(f"trusted place {name.strip()!r}: {exc}") from exc
        places.append(TrustedPlace(name=name.strip(), networks=networks))
    return tuple(places)


@dataclass(frozen=True)
class Settings:
    """Every setting the application reads. Field names map to `VAULT_<NAME>` environment variables."""

    data_dir: Path = Path("vault-data")
    database_url: str = ""
    storage: str = "local"
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "vault"
    # A folder-like key prefix ("vault/") for a bucket shared with other applications: every object vault
    # writes, lists or repairs lives under it, so `vault fsck --repair` never sees another's objects or uploads.
    s3_prefix: str = ""
    s3_secure: bool = True
    secret_key: str = ""
    keyring: Path | None = None
    config: Path | None = None
    max_upload_mb: int = 100
    trusted_places: tuple[TrustedPlace, ...] = ()
    proxy_count: int = 0
    base_url: str = ""
    content_url_seconds: int = 60
    view_window_minutes: int = 15
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Independent chains the log appends to in parallel (vault.audit.shards); records already written stay put.
    audit_shards: int = 8
    audit_checkpoint_every: int = 1000
    audit_checkpoint_minutes: int = 60
    audit_retention_days: int = 3650
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # The longest an API token of a person without a duty role may live (duty roles: 12 hours at most).
    token_max_days: int = 90
    login_max_failures: int = 5
    login_address_max_failures: int = 50
    login_window_minutes: int = 15
    login_lockout_minutes: int = 15
    totp_issuer: str = "Vault"
    agreement_version: str = "1"
    agreement_path: Path | None = None
    timezone: str = "UTC"
    webhook_url: str = ""
    smtp_url: str = ""
    mail_from: str = ""
    security_contacts: tuple[str, ...] = ()
    # How the company signs the letters to its customers, and the language a contact without one is written in.
    company_name: str = ""
    company_language: str = "en"
    # How long the link in a letter introducing a new account manager stays usable.
    letter_link_days: int = 30
    # How long after its link expired a letter that could not go (withheld, or its mail failed) keeps the
    # contact's address and its text for a re-issue; the maintenance sweep then forgets them.
    letter_keep_days: int = 90
    log_level: str = "INFO"
    grades: dict[int, GradeRule] = field(default_factory=lambda: dict(DEFAULT_GRADES))
    alerts: AlertSettings = field(default_factory=AlertSettings)
    working_hours: WorkingHours = field(default_factory=lambda: parse_working_hours({}, "UTC"))
    departure: DepartureSettings = field(default_factory=DepartureSettings)
    records: RecordSettings = field(default_factory=RecordSettings)
    lookups: LookupSettings = field(default_factory=LookupSettings)
    rotation: RotationSettings = field(default_factory=RotationSettings)
    pool: PoolSettings = field(default_factory=PoolSettings)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'vault.db').resolve()}"

    @property
    def keyring_path(self) -> Path:
        return self.keyring or self.data_dir / "keyring.json"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def policy_sections(self) -> dict[str, Any]:
        """The policy in force, shaped like the policy file."""
        return policy_sections(self.grades, self.alerts, self.working_hours, self.departure, self.records,
                               self.rotation, self.pool, self.lookups)

    def grade(self, grade: int) -> GradeRule:
        try:
            return self.grades[grade]
        except KeyError:
            raise ConfigError(f"no rule for grade {grade}") from None



# The values each whole-number setting may take, both ends included; any other stops the start-up, since a 0 or
# negative upload limit, token lifetime or checkpoint interval makes no sense and used to be taken quietly
# (the checkpoints treated it as 1). Only the proxy count may be 0: it means "no proxy, trust no header".
# The upper ends keep a typo (an extra zero or three) from making a sign-in take minutes, a session or a
# token live for years, or millions of audit records go unsigned. README's configuration table shows them.
RANGES: dict[str, tuple[int, int]] = {
    "max_upload_mb": (1, 1024 * 1024),
    "proxy_count": (0, 10),
    "content_url_seconds": (1, 60),
    "view_window_minutes": (1, 24 * 60),
    # argon2 itself takes 8 KiB; under 1 MiB a stolen hash is cheap to attack whatever the time cost.
    "argon2_time_cost": (1, 100),
    "argon2_memory_kib": (1024, 4 * 1024 * 1024),
    "audit_shards": (1, 64),
    "audit_checkpoint_every": (1, 1_000_000),
    "audit_checkpoint_minutes": (1, 24 * 60),
    "audit_retention_days": (1, 36_500),
    "session_idle_minutes": (1, 24 * 60),
    "session_absolute_hours": (1, 30 * 24),
    "token_max_days": (1, 365),
    "login_max_failures": (1, 1000),
    "login_address_max_failures": (1, 100_000),
    "login_window_minutes": (1, 24 * 60),
    "login_lockout_minutes": (1, 7 * 24 * 60),
    "letter_link_days": (1, 365),
    "letter_keep_days": (1, 3650),
}


_POLICY_FIELDS = {"grades", "alerts", "working_hours", "departure", "records", "lookups", "rotation", "pool"}
_ENV_FIELDS = {f.name for f in fields(Settings)} - _POLICY_FIELDS


def _coerce(name: str, raw: Any) -> Any:
    kind = Settings.__dataclass_fields__[name].type
    if name == "trusted_places":
        return parse_trusted_places(raw) if isinstance(raw, str) else raw
    if name == "security_contacts":
        return tuple(a.strip() for a in raw.split(",") if a.strip()) if isinstance(raw, str) else tuple(raw)
    if name in {"data_dir", "keyring", "config", "agreement_path"}:
        return Path(raw) if raw not in (None, "") else (None if name != "data_dir" else Path("vault-data"))
    if "bool" in str(kind):
        if isinstance(raw, bool):
            return raw
        value = str(raw).strip().lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"VAULT_{name.upper()} must be true or false, not {raw!r}")
    if "int" in str(kind):
        if isinstance(raw, bool | float):  # int() would take True as 1 and cut 2.9 to 2 without a word
            raise ConfigError(f"VAULT_{name.upper()} must be a whole number, not {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"VAULT_{name.upper()} must be a whole number, not {raw!r}") from None
    return raw


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"VAULT_CONFIG names {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return data


def _parse_policy(sections: dict[str, Any], timezone: str, where: str) -> dict[str, Any]:
    """The policy file's sections as typed settings; an unknown section or key is an error."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    for name, value in sections.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
    return {
        "grades": parse_grades(sections.get("grades", {}), where),
        "alerts": parse_alerts(sections.get("alerts", {})),
        "working_hours": parse_working_hours(sections.get("working_hours", {}), timezone),
        "departure": parse_departure(sections.get("departure", {})),
        "records": parse_records(sections.get("records", {})),
        "lookups": parse_lookups(sections.get("lookups", {})),
        "rotation": parse_rotation(sections.get("rotation", {})),
        "pool": parse_pool(sections.get("pool", {})),
    }


# `VAULT_*` variables that say where a helper program or data lives rather than how vault behaves: read by
# the code that starts LibreOffice (`VAULT_SOFFICE`), finds fonts (`VAULT_FONT_DIR`) or the test set-up's
# browser (`VAULT_CHROMIUM`); accepted here so that setting one does not stop start-up.
TOOL_LOCATIONS = frozenset({"soffice", "font_dir", "chromium"})


def load_settings(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from the environment, the TOML file it names, and explicit overrides.

    Raises:
        ConfigError: a `VAULT_*` variable or override key is unknown, or a value is malformed.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith("VAULT_"):
            continue
        name = key[len("VAULT_"):].lower()
        if name in TOOL_LOCATIONS:
            continue  # read where the tool is started (rendering, fonts, the test set-up), not a setting
        if name not in _ENV_FIELDS:
            raise ConfigError(f"unknown setting {key}; see the configuration table in the README")
        values[name] = _coerce(name, raw)
    # Overrides (tests, embedding) may give the policy file's sections as "policy" (a dict shaped like the
    # TOML file) and grade rules as "grades"; both go through the same parser as the file.
    sections: dict[str, Any] = {}
    grade_rules: dict[int, GradeRule] | None = None
    for name, raw in (overrides or {}).items():
        if name == "policy":
            sections = dict(raw)
        elif name == "grades":
            grade_rules = dict(raw)
        elif name not in _ENV_FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        else:
            values[name] = _coerce(name, raw)
    zone(str(values.get("timezone", "UTC")), "VAULT_TIMEZONE")
    where = "policy"
    if values.get("config"):
        where = str(values["config"])
        sections = {**_load_toml(values["config"]), **sections}
    values.update(_parse_policy(sections, str(values.get("timezone", "UTC")), where))
    if grade_rules is not None:
        values["grades"] = grade_rules
    settings = Settings(**values)
    if settings.storage not in {"local", "s3"}:
        raise ConfigError(f"VAULT_STORAGE must be 'local' or 's3', not {settings.storage!r}")
    if settings.storage == "s3" and not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
        raise ConfigError("VAULT_STORAGE=s3 needs VAULT_S3_ENDPOINT, VAULT_S3_ACCESS_KEY and VAULT_S3_SECRET_KEY")
    if settings.s3_prefix:
        try:
            validate_prefix(settings.s3_prefix)
        except ValueError as exc:
            raise ConfigError(f"VAULT_S3_PREFIX: {exc}") from None
        if not settings.s3_prefix.endswith("/"):
            # "vault" would also be the start of "vault-backups/...": only a whole folder is vault's own.
            raise ConfigError(f"VAULT_S3_PREFIX must end with '/', like 'vault/', not {settings.s3_prefix!r}")
    if settings.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"VAULT_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
                          f"not {settings.log_level!r}")
    for name, (low, high) in RANGES.items():
        value = getattr(settings, name)
        if not low <= value <= high:
            raise ConfigError(f"VAULT_{name.upper()} must be between {low} and {high}, not {value}")
    if settings.webhook_url:
        # Only http and https: urllib would also open file: and ftp: URLs, which a webhook has no use for.
        parts = urlsplit(settings.webhook_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ConfigError(f"VAULT_WEBHOOK_URL must be an http:// or https:// URL, not {settings.webhook_url!r}")
    if not settings.agreement_version.strip() or len(settings.agreement_version) > 64:
        raise ConfigError("VAULT_AGREEMENT_VERSION must be 1 to 64 characters")
    if settings.agreement_path is not None and not settings.agreement_path.is_file():
        raise ConfigError(f"VAULT_AGREEMENT_PATH names {settings.agreement_path}, which is not a file")
    if len(settings.company_name) > 200:
        raise ConfigError("VAULT_COMPANY_NAME has at most 200 characters")
    if settings.company_language not in LANGUAGES:
        raise ConfigError(f"VAULT_COMPANY_LANGUAGE must be one of {', '.join(LANGUAGES)}, "
                          f"not {settings.company_language!r}")
    check_smtp(settings)
    return settings


def ensure_secret_key(settings: Settings) -> Settings:
    """Use VAULT_SECRET_KEY, or one generated once into the data folder so sessions survive restarts.

    Whoever reads the file can sign a session cookie for anyone, an administrator included: like the
    keyring, a file that others may read (any of the 0o077 bits) stops the start-up.
    """
    if settings.secret_key:
        return settings
    path = settings.data_dir / "secret_key"
    if path.exists():
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode) or mode & 0o077:
            raise ConfigError(f"the session-signing secret {path} is readable or writable by others "
                              f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}` and start again")
        return replace(settings, secret_key=path.read_text(encoding="utf-8").strip())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return replace(settings, secret_key=key)
