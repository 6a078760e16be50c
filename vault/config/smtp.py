"""Mail settings: where to send (`VAULT_SMTP_URL`), as whom (`VAULT_MAIL_FROM`), and who gets security
alerts (`VAULT_SECURITY_CONTACTS`); checked at start-up like every other setting.

`VAULT_SMTP_URL` forms:
    smtp://host:25                          plain (a relay on the same network)
    smtp://user:pass@host:587?starttls=1    STARTTLS required (refuses to send if the server lacks it)
    smtps://user:pass@host:465              TLS from the first byte
Query options: `starttls` (0/1), `timeout` (seconds, default 20), `cafile` (a CA bundle to trust
instead of the system's, for an internal relay). An empty URL disables sending, never queueing: mails
wait in the outbox until a server is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from vault.config.addresses import InvalidAddress, normalize
from vault.config.errors import ConfigError

if TYPE_CHECKING:
    from vault.config.settings import Settings

DEFAULT_TIMEOUT = 20.0
_OPTIONS = {"starttls", "timeout", "cafile"}


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool
    timeout: float
    cafile: str | None

    def __repr__(self) -> str:  # never print the password into a log
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"SmtpConfig({scheme}://{self.host}:{self.port}, starttls={self.starttls})"


def _flag(name: str, value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"VAULT_SMTP_URL option {name} must be 0 or 1, not {value!r}")


def parse_smtp_url(url: str) -> SmtpConfig:
    """Raises ConfigError for another scheme, no host, a bad port or an unknown option."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ConfigError("VAULT_SMTP_URL must look like smtp://[user:pass@]host[:port][?starttls=1] "
                          "or smtps://[user:pass@]host[:port]")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("VAULT_SMTP_URL has a malformed port") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - _OPTIONS
    if unknown:
        raise ConfigError(f"VAULT_SMTP_URL: unknown option(s) {', '.join(sorted(unknown))}")
    options = {key: values[-1] for key, values in query.items()}
    implicit = parts.scheme == "smtps"
    starttls = _flag("starttls", options["starttls"]) if "starttls" in options else False
    if implicit and starttls:
        raise ConfigError("VAULT_SMTP_URL: smtps:// is TLS already; starttls=1 is for smtp://")
    try:
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
    except ValueError:
        raise ConfigError("VAULT_SMTP_URL option timeout must be a number of seconds") from None
    if not 0 < timeout <= 300:
        raise ConfigError("VAULT_SMTP_URL option timeout must be between 0 and 300 seconds")
    return SmtpConfig(
        host=parts.hostname, port=port or (465 if implicit else 587 if starttls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        implicit_tls=implicit, starttls=starttls, timeout=timeout, cafile=options.get("cafile") or None,
    )


def check(settings: Settings) -> None:
    """Validate the mail settings (called by `load_settings`).

    Raises:
        ConfigError: a malformed SMTP URL, sender or security contact, or an SMTP URL without a sender.
    """
    if settings.smtp_url:
        parse_smtp_url(settings.smtp_url)
        if not settings.mail_from:
            raise ConfigError("VAULT_SMTP_URL needs VAULT_MAIL_FROM (the sender address)")
    if settings.mail_from:
        try:
            normalize(settings.mail_from)
        except InvalidAddress:
            raise ConfigError(f"VAULT_MAIL_FROM {settings.mail_from!r} is not an e-mail address") from None
    for address in settings.security_contacts:
        try:
            normalize(address)
        except InvalidAddress:
            raise ConfigError(f"VAULT_SECURITY_CONTACTS: {address!r} is not an e-mail address") from None
    if settings.base_url and urlsplit(settings.base_url).scheme not in {"http", "https"}:
        raise ConfigError("VAULT_BASE_URL must start with http:// or https://")
